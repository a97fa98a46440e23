#!/usr/bin/env bash
# The test command: every test, fast pure ones and integration ones against the real Temporal servers
# and the real HAPI FHIR server (started and stopped by the fixtures in tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/pytest "$@"
