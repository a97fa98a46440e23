"""``referral-service``: run the embedded stack, a worker or the API, and work with referrals."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from referral_service import cli_commands
from referral_service.cli_http import EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, ApiClient, CliError, api_url
from referral_service.devstack import hapi_server

if TYPE_CHECKING:
    from referral_service.config import Settings

EXIT_FAILURE = EXIT_REFUSED
SERVER_COMMANDS = frozenset({"dev", "worker", "api", "replay-history", "replay", "rebuild-read-model"})
SERVER_LIFETIME = (
    "SIGINT or SIGTERM stops it within shutdown_grace_seconds (IOP_SHUTDOWN_GRACE_SECONDS, default 30; in-flight "
    "activities get two thirds of it, then are cancelled and retried elsewhere), exit 0. One that cannot start "
    "(a port taken, Temporal unreachable for temporal_connect_seconds (IOP_TEMPORAL_CONNECT_SECONDS, default 60), "
    "a program file that does not load) logs why in one line and exits 1; invalid settings exit 2."
)
EPILOG = f"""\
client commands (submit, list, show, attend, team, discharge, retry-writes, measures, audit) talk to a running
API over HTTP:
  --api-url, else $IOP_API_URL, else http://API_HOST:API_PORT from the settings.
  --api-url, --timeout and --json go before or after the command.
  They send the bearer token in $IOP_API_TOKEN to an API that requires sign-in.
  They never print a patient's name, birth date or identifiers.

{textwrap.fill("server commands (dev, worker, api): " + SERVER_LIFETIME, 110)}

exit codes:
  {EXIT_OK}  ok
  {EXIT_REFUSED}  the server refused the request (4xx), or there is no such referral
  {EXIT_USAGE}  usage error, unusable file or settings
  {EXIT_UNREACHABLE}  the API is unreachable or unavailable (connection failed, timed out, 5xx)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="referral-service",
        description="IOP referral and care-coordination service (FHIR R4 + Temporal).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="TOML settings file (default: $IOP_CONFIG, else built-in)")
    cli_commands.add_client_options(parser, json_help="client commands: print the result as JSON")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev_help = "run the embedded stack: Temporal dev server + UI, HAPI FHIR test server, worker, API"
    dev = commands.add_parser(
        "dev", help=dev_help, description=f"{dev_help[0].upper()}{dev_help[1:]}. {SERVER_LIFETIME}"
    )
    dev.add_argument("--state-dir", type=Path, help="folder for all local state (default: .iop-state)")
    dev.add_argument("--temporal-port", type=int, default=7233)
    dev.add_argument("--ui-port", type=int, default=8233, help="Temporal web UI port")
    dev.add_argument("--hapi-port", type=int, default=8080)
    dev.add_argument(
        "--hapi-heap",
        default=hapi_server.DEFAULT_HEAP,
        type=_heap_size,
        help=f"HAPI's Java heap ceiling, -Xmx (default {hapi_server.DEFAULT_HEAP}: what a burst of writes needs)",
    )
    dev.add_argument("--api-port", type=int, default=8000)
    dev.add_argument(
        "--demo",
        action="store_true",
        help="once the stack is up, load a demo caseload (about thirty referrals in every phase, from scenarios/)",
    )

    commands.add_parser(
        "worker",
        help="run a Temporal worker against the configured Temporal server",
        description="Runs a Temporal worker on the configured task queue, and serves its /healthz and /readyz on "
        "worker_health_host:worker_health_port (IOP_WORKER_HEALTH_HOST, IOP_WORKER_HEALTH_PORT; default "
        "127.0.0.1:8001, apart from the API's 8000; port 0 picks a free one, logged in the 'serving' line). "
        + SERVER_LIFETIME,
    )
    commands.add_parser(
        "api",
        help="serve the FHIR intake endpoint and the case-manager API",
        description="Serves the FHIR intake endpoint, the case-manager API, the dashboard, /healthz and /readyz on "
        "api_host:api_port (IOP_API_HOST, IOP_API_PORT; default 127.0.0.1:8000). " + SERVER_LIFETIME,
    )
    replay = commands.add_parser(
        "replay-history",
        help="replay recorded workflow histories against this code; exit 1 on any non-determinism",
        description="Replays Temporal history JSON files (temporal workflow show --output json), or the histories "
        "of workflows on the configured Temporal server (--workflow-id, --query), with the worker's workflows, "
        "sandbox and payload codec (the settings' key ring must hold their keys).",
    )
    replay.add_argument("paths", nargs="*", type=Path, help="history files, or folders of *.json histories")
    replay.add_argument(
        "--workflow-id",
        action="append",
        default=[],
        metavar="ID",
        help="also replay this referral's latest run, fetched from the Temporal server (repeatable)",
    )
    replay.add_argument(
        "--query",
        help="also replay the runs a visibility query lists, e.g. \"WorkflowType = 'ReferralWorkflow' AND "
        "ExecutionStatus = 'Running'\"",
    )
    replay.add_argument(
        "--limit",
        type=_positive_int,
        default=100,
        help="at most this many runs from --query (default 100)",
    )
    replay.add_argument(
        "--processes",
        type=_positive_int,
        help="replay in this many processes (default: one per CPU this process may use)",
    )
    scenarios = commands.add_parser(
        "replay",
        help="replay referral scenarios against a FHIR server and check what lands there; exit 1 on any unmet "
        "expectation",
        description="Seeds each scenario's referral in the FHIR server, runs the real workflow and activities on "
        "a time-skipping Temporal test server (a 12-week program takes seconds), drives its timeline with the "
        "case-manager updates, and checks the scenario's expectations by searching the server. Prints every FHIR "
        "interaction (method, URL, status, resource id and version) and each unmet expectation as expected "
        "versus found. Format: docs/scenarios.md. Exit codes: 0 all met, 1 an expectation unmet or an event "
        "refused, 2 an invalid scenario file, 3 the FHIR server unreachable or not FHIR R4.",
    )
    scenarios.add_argument(
        "scenarios", nargs="+", type=Path, metavar="SCENARIO", help="scenario files (TOML), or folders of them"
    )
    scenarios.add_argument(
        "--fhir-url",
        metavar="URL",
        help="base URL of any FHIR R4 server to write to (default: start the embedded HAPI test server)",
    )
    scenarios.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="also write the report as JSON to FILE, and the final resources "
        "as a transaction Bundle to FILE's stem + .bundle.json",
    )
    scenarios.add_argument(
        "--run-id",
        metavar="ID",
        help="suffix for the referrals' order numbers (default: fresh each run, so runs never share resources; "
        "repeat one to replay onto the same resources)",
    )
    commands.add_parser(
        "rebuild-read-model",
        help="write every referral's read-model row again from the Temporal server (after a restore, or for "
        "referrals begun before the read model)",
        description="Asks each referral workflow on the task queue (task_queue) for its row and writes it to the "
        "service database (database_url) unless the row there is as new or newer. A closed referral's row makes a "
        "worker replay its history: run it with a worker up. Exit 1 when some referral gave no row.",
    )
    cli_commands.add_commands(commands)
    return parser


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, not {text!r}")
    return int(text)


def _heap_size(text: str) -> str:
    """A JVM memory size as -Xmx takes it: digits and a unit (k, m, g)."""
    if not re.fullmatch(r"[1-9]\d*[kmgKMG]", text):
        raise argparse.ArgumentTypeError(f"expected a size such as 2g or 1536m, not {text!r}")
    return text


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point. Leaves with ``os._exit`` so the Temporal runtime cannot turn an exit code into an abort."""
    args = _parser().parse_args(argv)
    code = _run(args) if args.command in SERVER_COMMANDS else _run_client(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _run(args: argparse.Namespace) -> int:
    # Imported here: settings pull in the Temporal SDK, which client commands do not need to start fast.
    from referral_service import logging as service_logging
    from referral_service.config import load_settings
    from referral_service.lifetime import EXIT_FAILED, StartupError

    overrides = {"state_dir": args.state_dir} if getattr(args, "state_dir", None) else {}
    try:
        settings = load_settings(args.config, **overrides)
    except (ValueError, OSError) as error:
        print(f"referral-service: invalid settings: {error}", file=sys.stderr)
        return EXIT_USAGE
    service_logging.configure(settings.log_format)
    log = service_logging.get_logger()
    try:
        return asyncio.run(_dispatch(args, settings))
    except KeyboardInterrupt:
        return EXIT_OK
    except StartupError as error:  # one line saying why, and a non-zero exit its supervisor acts on
        log.error(f"cannot start: {error}")
        return EXIT_FAILED
    except Exception:  # a crash exits too (main's os._exit), rather than lingering on the SDK's threads
        log.exception("stopped on an error")
        return EXIT_FAILED


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from referral_service import runners

    match args.command:
        case "dev":
            from referral_service.replay.demo import load_into_stack

            return await runners.run_dev(settings, args, load_into_stack if args.demo else None)
        case "worker":
            return await runners.run_worker_only(settings)
        case "api":
            return await runners.run_api_only(settings)
        case "replay-history":
            server = runners.ServerHistories(args.workflow_id, args.query, args.limit)
            return await runners.run_replay_history(settings, args.paths, args.processes, server)
        case "rebuild-read-model":
            return await runners.run_rebuild_read_model(settings)
        case "replay":
            from referral_service.replay.command import run_replay

            return await run_replay(
                args.scenarios,
                fhir_url=args.fhir_url,
                report=args.report,
                program_file=settings.program_file,
                run_id=args.run_id,
            )
    return EXIT_USAGE


def _run_client(args: argparse.Namespace) -> int:
    """A client command against the API; its ``CliError`` is printed (to stderr) with the exit code it names."""
    try:
        url = api_url(getattr(args, "api_url", None), lambda: _api_address(args.config))
        timeout = getattr(args, "timeout", cli_commands.DEFAULT_TIMEOUT_S)
        if timeout <= 0:
            raise CliError("--timeout must be positive", EXIT_USAGE)
        with ApiClient(url, timeout) as client:
            return cli_commands.run(args, client)
    except CliError as error:
        print(f"referral-service {args.command}: {error}", file=sys.stderr)
        for line in error.details:
            print(f"  {line}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return EXIT_FAILURE


def _api_address(config: Path | None) -> tuple[str, int]:
    from referral_service.config import load_settings

    try:
        settings = load_settings(config)
    except (ValueError, OSError) as error:
        raise CliError(f"invalid settings: {error}", EXIT_USAGE) from None
    return settings.api_host, settings.api_port
