#!/usr/bin/env bash
# The main job on the embedded defaults: Temporal dev server (with web UI), HAPI FHIR test server,
# the worker and the API, all on this machine, state under .iop-state/. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/referral-service dev "$@"
