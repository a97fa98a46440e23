"""The server commands: the embedded stack (``dev``), a ``worker``, the ``api``, replaying recorded histories
(``replay-history``) and scenarios (``replay``), and ``rebuild-read-model``. Each runs with the settings loaded.

Each handler imports what it runs: the Temporal SDK and the rest would slow every client command's start."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from referral_service.cli.options import heap_size, positive_int
from referral_service.devstack import hapi_server

if TYPE_CHECKING:
    from referral_service.config import Settings

SERVER_LIFETIME = (
    "SIGINT or SIGTERM stops it within shutdown_grace_seconds (IOP_SHUTDOWN_GRACE_SECONDS, default 30; in-flight "
    "activities get two thirds of it, then are cancelled and retried elsewhere), exit 0. One that cannot start "
    "(a port taken, Temporal unreachable for temporal_connect_seconds (IOP_TEMPORAL_CONNECT_SECONDS, default 60), "
    "a program file that does not load) logs why in one line and exits 1; invalid settings exit 2."
)


def add(commands: Any) -> None:
    _dev_command(commands)
    _worker_command(commands)
    _api_command(commands)
    _replay_history_command(commands)
    _replay_command(commands)
    _rebuild_read_model_command(commands)


def _dev_command(commands: Any) -> None:
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
        type=heap_size,
        help=f"HAPI's Java heap ceiling, -Xmx (default {hapi_server.DEFAULT_HEAP}: what a burst of writes needs)",
    )
    dev.add_argument("--api-port", type=int, default=8000)
    dev.add_argument(
        "--demo",
        action="store_true",
        help="once the stack is up, load a demo caseload (about thirty referrals in every phase, from scenarios/)",
    )
    dev.set_defaults(serve=_dev)


async def _dev(args: argparse.Namespace, settings: Settings) -> int:
    from referral_service import runners
    from referral_service.replay.demo import load_into_stack

    return await runners.run_dev(settings, args, load_into_stack if args.demo else None)


def _worker_command(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="run a Temporal worker against the configured Temporal server",
        description="Runs a Temporal worker on the configured task queue, and serves its /healthz and /readyz on "
        "worker_health_host:worker_health_port (IOP_WORKER_HEALTH_HOST, IOP_WORKER_HEALTH_PORT; default "
        "127.0.0.1:8001, apart from the API's 8000; port 0 picks a free one, logged in the 'serving' line). "
        + SERVER_LIFETIME,
    )
    worker.set_defaults(serve=_worker)


async def _worker(_args: argparse.Namespace, settings: Settings) -> int:
    from referral_service import runners

    return await runners.run_worker_only(settings)


def _api_command(commands: Any) -> None:
    api = commands.add_parser(
        "api",
        help="serve the FHIR intake endpoint and the case-manager API",
        description="Serves the FHIR intake endpoint, the case-manager API, the dashboard, /healthz and /readyz on "
        "api_host:api_port (IOP_API_HOST, IOP_API_PORT; default 127.0.0.1:8000). " + SERVER_LIFETIME,
    )
    api.set_defaults(serve=_api)


async def _api(_args: argparse.Namespace, settings: Settings) -> int:
    from referral_service import runners

    return await runners.run_api_only(settings)


def _replay_history_command(commands: Any) -> None:
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
        type=positive_int,
        default=100,
        help="at most this many runs from --query (default 100)",
    )
    replay.add_argument(
        "--processes",
        type=positive_int,
        help="replay in this many processes (default: one per CPU this process may use)",
    )
    replay.set_defaults(serve=_replay_history)


async def _replay_history(args: argparse.Namespace, settings: Settings) -> int:
    from referral_service import runners

    server = runners.ServerHistories(args.workflow_id, args.query, args.limit)
    return await runners.run_replay_history(settings, args.paths, args.processes, server)


def _rebuild_read_model_command(commands: Any) -> None:
    rebuild = commands.add_parser(
        "rebuild-read-model",
        help="write every referral's read-model row again from the Temporal server (after a restore, or for "
        "referrals begun before the read model)",
        description="Asks each referral workflow on the task queue (task_queue) for its row and writes it to the "
        "service database (database_url) unless the row there is as new or newer. A closed referral's row makes a "
        "worker replay its history: run it with a worker up. Exit 1 when some referral gave no row.",
    )
    rebuild.set_defaults(serve=_rebuild_read_model)


async def _rebuild_read_model(_args: argparse.Namespace, settings: Settings) -> int:
    from referral_service import runners

    return await runners.run_rebuild_read_model(settings)


def _replay_command(commands: Any) -> None:
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
    scenarios.set_defaults(serve=_replay_scenarios)


async def _replay_scenarios(args: argparse.Namespace, settings: Settings) -> int:
    from referral_service.replay.command import run_replay

    return await run_replay(
        args.scenarios,
        fhir_url=args.fhir_url,
        report=args.report,
        program_file=settings.program_file,
        run_id=args.run_id,
    )
