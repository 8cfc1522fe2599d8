"""``python -m seg``: the command line (see :mod:`seg.cli`)."""

from seg.cli import main

raise SystemExit(main())
