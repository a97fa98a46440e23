"""``referral-service``: run the embedded stack, a worker or the API, and work with referrals."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from referral_service import logging as service_logging
from referral_service.config import Settings, load_settings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="referral-service",
        description="IOP referral and care-coordination service (FHIR R4 + Temporal).",
    )
    parser.add_argument("--config", type=Path, help="TOML settings file (default: $IOP_CONFIG, else built-in)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser(
        "dev", help="run the embedded stack: Temporal dev server + UI, HAPI FHIR test server, worker, API"
    )
    dev.add_argument("--state-dir", type=Path, help="folder for all local state (default: .iop-state)")
    dev.add_argument("--temporal-port", type=int, default=7233)
    dev.add_argument("--ui-port", type=int, default=8233, help="Temporal web UI port")
    dev.add_argument("--hapi-port", type=int, default=8080)
    dev.add_argument("--api-port", type=int, default=8000)

    commands.add_parser("worker", help="run a Temporal worker against the configured Temporal server")
    commands.add_parser("api", help="serve the FHIR intake endpoint and the case-manager API")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point. Leaves with ``os._exit`` so the Temporal runtime cannot turn an exit code into an abort."""
    args = _parser().parse_args(argv)
    code = _run(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run(args: argparse.Namespace) -> int:
    overrides = {"state_dir": args.state_dir} if getattr(args, "state_dir", None) else {}
    try:
        settings = load_settings(args.config, **overrides)
    except (ValueError, OSError) as error:
        print(f"referral-service: invalid settings: {error}", file=sys.stderr)
        return EXIT_USAGE
    service_logging.configure(settings.log_format)
    try:
        return asyncio.run(_dispatch(args, settings))
    except KeyboardInterrupt:
        return EXIT_OK


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from referral_service import runners

    match args.command:
        case "dev":
            return await runners.run_dev(settings, args)
        case "worker":
            return await runners.run_worker_only(settings)
        case "api":
            return await runners.run_api_only(settings)
    return EXIT_USAGE
