"""Process-wide settings that the app's server and the command line make once.

NumPy asks the kernel for transparent huge pages on every array of 4 MB or more
(``madvise(MADV_HUGEPAGE)``). Where the kernel's THP ``defrag`` setting is ``madvise`` (a common
default), the first write to such an array then stalls in direct memory compaction once memory
is fragmented, which a long-running server or a pass over a large image soon makes it: an
8192² pan in the app spent 0.75 s in ``memcpy`` page faults writing 92 MB (py-spy --native), and
``seg apply --tile 1024`` of an 8192² image took 36 s instead of 23 s (``bench/README.md``,
"Third pass"). :func:`stop_hugepage_advice` turns the advice off, as ``NUMPY_MADVISE_HUGEPAGE=0``
in the environment would. It is not done on ``import seg``: a library should not change NumPy's
behaviour for the program that imports it.
"""

from __future__ import annotations

import os

__all__ = ["stop_hugepage_advice"]


def stop_hugepage_advice() -> bool:
    """Make NumPy stop advising huge pages for new arrays; False if this NumPy cannot.

    A host's own ``NUMPY_MADVISE_HUGEPAGE`` (read by NumPy at import) is left as it chose.
    """
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return True
    try:
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - NumPy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    setter = getattr(multiarray, "_set_madvise_hugepage", None)  # documented with the variable
    if setter is None:  # pragma: no cover - a NumPy without it
        return False
    setter(False)
    return True
