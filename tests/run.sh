#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs the pip requirements and Debian's
# chromium (for the browser tests), then runs pytest. Extra arguments go to pytest.
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

exec "$PYTHON" -m pytest tests -p no:cacheprovider --timeout=900 -q "$@"
