#!/usr/bin/env bash
# The deployed topology on this machine, without Docker: PostgreSQL (Debian's package), the Temporal server built
# from its Go module (four services), HAPI FHIR on PostgreSQL, two workers and two API processes. Ctrl-C (or
# SIGTERM) stops everything it started. `scripts/deployed.sh --help` for its options.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build_temporal_server.sh >/dev/null
exec .venv/bin/python -m referral_service.devstack.deployed "$@"
