#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs the pip requirements and Debian's
# chromium (for the browser tests), lints (ruff) and type-checks (mypy on seg/, settings in
# pyproject.toml), then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

"$PYTHON" -m pip install --quiet --disable-pip-version-check -r requirements.txt -r tests/requirements.txt

if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

"$PYTHON" -m ruff check --no-cache .
"$PYTHON" -m ruff format --check --no-cache .
"$PYTHON" -m mypy --cache-dir "${TMPDIR:-/tmp}/seg-mypy-cache"

exec "$PYTHON" -m pytest tests -p no:cacheprovider --timeout=900 -q "$@"
