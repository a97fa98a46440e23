"""Long-running processes: the worker, the API, and the embedded dev stack that runs both."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import socket
import sys
import tempfile
from collections.abc import Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import uvicorn
from temporalio.client import Client
from temporalio.service import RPCError

from referral_service.api.app import create_app, create_worker_health_app
from referral_service.api.http_server import server_config
from referral_service.config import Settings
from referral_service.devstack.stack import DevPorts, servers, stop_on_signals, unless_stopped
from referral_service.domain.program import Program
from referral_service.lifetime import StartupError, exit_if_still_running_after, listen
from referral_service.logging import get_logger
from referral_service.programs import load_program
from referral_service.read_model import rebuild_read_model
from referral_service.store.database import open_database
from referral_service.temporal_client.connection import connect
from referral_service.temporal_client.key_ring_secrets import referral_rows
from referral_service.temporal_client.poll_schedules import ensure_poll_schedules
from referral_service.tracing import tracing
from referral_service.worker import build_worker, ehr_clients, replay_histories

log = get_logger()


class QuietApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: ``stop_on_signals`` decides when everything stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def run_worker_only(settings: Settings) -> int:
    """A Temporal worker, answering its orchestrator's health probes on its own address."""
    address = (settings.worker_health_host, settings.worker_health_port, "worker_health_port")
    return await _run_alone(settings, "worker", address)


async def run_api_only(settings: Settings) -> int:
    return await _run_alone(settings, "api", (settings.api_host, settings.api_port, "api_port"))


async def _run_alone(settings: Settings, role: Literal["worker", "api"], address: tuple[str, int, str]) -> int:
    """``role`` until SIGINT/SIGTERM; a fatal start-up error raises ``StartupError`` before anything runs."""
    stop = stop_on_signals(settings.shutdown_grace_seconds)
    program = _program(settings)
    with listen(*address) as listener, tracing(settings.otlp_traces_endpoint, role):
        client = await unless_stopped(stop, _connect(settings))
        if client is not None:
            await _serve(settings, client, stop, program, listener, worker=role == "worker", api=role == "api")
    return 0


async def run_dev(
    settings: Settings,
    args: argparse.Namespace,
    on_ready: Callable[[Settings, Client], Coroutine[Any, Any, None]] | None = None,
) -> int:
    """Temporal dev server + UI, HAPI, a worker and the API; everything stops on Ctrl-C or SIGTERM.
    ``on_ready`` runs beside them once the servers are up (``--demo`` loads a caseload with it).

    The signal handlers go in before the first server starts: a signal during start-up (HAPI takes a minute)
    cancels it, and the servers already launched are stopped, not orphaned.
    """
    stop = stop_on_signals(settings.shutdown_grace_seconds)
    program = _program(settings)
    ports = DevPorts(args.temporal_port, args.ui_port, args.hapi_port, args.api_port)
    with listen(settings.api_host, ports.api, "--api-port") as listener:
        async with contextlib.AsyncExitStack() as running:
            stack = await unless_stopped(stop, running.enter_async_context(servers(settings, ports, args.hapi_heap)))
            if stack is None:
                return 0
            dev_settings = stack.settings
            print(
                "\nIOP referral service, embedded stack:\n"
                f"  API + dashboard   http://{dev_settings.api_host}:{dev_settings.api_port}/\n"
                f"  FHIR intake       http://{dev_settings.api_host}:{dev_settings.api_port}/fhir\n"
                f"  Temporal          {dev_settings.temporal_address}  (UI {dev_settings.temporal_ui_url})\n"
                f"  HAPI FHIR (EHR)   {stack.hapi_base_url}\n"
                f"  state             {dev_settings.state_dir.resolve()}\n"
                "Ctrl-C stops everything.\n",
                flush=True,
            )
            with tracing(dev_settings.otlp_traces_endpoint, "dev"):
                client = await unless_stopped(stop, _connect(dev_settings))
                if client is not None:
                    extra = asyncio.create_task(on_ready(dev_settings, client)) if on_ready else None
                    await _serve(dev_settings, client, stop, program, listener, worker=True, api=True)
                    if extra is not None:
                        extra.cancel()
    return 0


def _program(settings: Settings) -> Program:
    try:
        return load_program(settings.program_file)
    except (OSError, ValueError) as error:  # unreadable, not TOML, or not a valid program
        raise StartupError(f"program file {settings.program_file} does not load: {error}") from None


async def _connect(settings: Settings) -> Client:
    """The Temporal client, waited for as long as ``temporal_connect_seconds`` says, else a ``StartupError``."""
    try:
        return await connect(settings, patience_s=settings.temporal_connect_seconds)
    except StartupError:
        raise
    except RuntimeError as error:  # the SDK's connection failure
        raise StartupError(
            f"Temporal at {settings.temporal_address} unreachable for "
            f"{settings.temporal_connect_seconds:.0f}s (temporal_connect_seconds): {error}"
        ) from None


async def _serve(
    settings: Settings,
    client: Client,
    stop: asyncio.Event,
    program: Program,
    listener: socket.socket,
    *,
    worker: bool,
    api: bool,
) -> None:
    """Run the worker and/or the API (HTTP on ``listener``) until ``stop`` is set (SIGINT/SIGTERM), then shut
    both down gracefully: the worker stops polling and its in-flight activities get ``activity_grace``."""
    clients = ehr_clients(settings)
    async with contextlib.AsyncExitStack() as cleanup:
        for fhir_client in clients.values():
            cleanup.push_async_callback(fhir_client.aclose)
        tasks: list[asyncio.Task[None]] = []
        worker_running: Callable[[], bool] | None = None
        if worker:
            temporal_worker = await build_worker(client, settings, clients, program)
            await ensure_poll_schedules(client, settings, program)
            tasks.append(asyncio.create_task(temporal_worker.run(), name="the Temporal worker"))
            cleanup.push_async_callback(temporal_worker.shutdown)
            worker_running = partial(getattr, temporal_worker, "is_running")
        if api:
            app = create_app(settings, client, worker_running=worker_running)
        else:  # a worker alone still answers its orchestrator's health probes, on its own address
            assert worker_running is not None
            app = create_worker_health_app(settings, client, worker_running)
        host, port = listener.getsockname()[:2]
        server = QuietApiServer(server_config(app, settings, host=host, port=port))
        tasks.append(asyncio.create_task(_serve_http(server, listener), name="the HTTP server"))
        cleanup.callback(setattr, server, "should_exit", True)
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        log.info("serving", task_queue=settings.task_queue, address=settings.temporal_address, url=url)
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done - {stopped}:
            # Shutting down on a failure is bounded like shutting down on a signal.
            exit_if_still_running_after(settings.shutdown_grace_seconds)
            task.result()  # a server that died on its own re-raises here
            raise RuntimeError(f"{task.get_name()} stopped on its own")
    await asyncio.gather(*tasks, return_exceptions=True)
    log.info("stopped")


async def _serve_http(server: uvicorn.Server, listener: socket.socket) -> None:
    try:
        await server.serve(sockets=[listener])
    except SystemExit:  # how uvicorn fails its start-up (the app's lifespan), having logged why
        raise StartupError("the HTTP server did not start (uvicorn's error above says why)") from None


@dataclass(frozen=True)
class ServerHistories:
    """Histories to fetch from the configured Temporal server: referrals by id, and runs a query lists."""

    workflow_ids: Sequence[str] = ()
    query: str | None = None
    limit: int = 100

    def __bool__(self) -> bool:
        return bool(self.workflow_ids) or self.query is not None


async def run_replay_history(
    settings: Settings, paths: list[Path], processes: int | None = None, server: ServerHistories | None = None
) -> int:
    """Replay every history under ``paths`` and those ``server`` names; a table of results, exit 1 when any
    fails to replay, 2 when there is nothing to replay, 3 when the Temporal server cannot be reached."""
    files = sorted(f for p in paths for f in (p.glob("*.json") if p.is_dir() else [p]))
    with tempfile.TemporaryDirectory(prefix="iop-histories-") as fetched_dir:
        if server:
            try:
                files += await fetch_histories(settings, server, Path(fetched_dir))
            except RuntimeError as error:  # the SDK's connection failure
                print(f"replay-history: cannot reach Temporal at {settings.temporal_address}: {error}", file=sys.stderr)
                return 3
            except RPCError as error:  # e.g. no such workflow id, or a query the server cannot parse
                print(f"replay-history: the Temporal server refused: {error.message}", file=sys.stderr)
                return 2
        if not files:
            print("replay-history: no histories found", file=sys.stderr)
            return 2
        results = await replay_histories(files, settings.key_ring(), processes=processes)
    width = max(len(r.workflow_id) for r in results)
    for result in results:
        verdict = "ok" if result.failure is None else f"NON-DETERMINISTIC: {result.failure}"
        print(f"{result.workflow_id:<{width}}  {result.events:>6} events  {verdict}")
    failed = sum(1 for r in results if r.failure)
    print(f"{len(results)} histories, {sum(r.events for r in results)} events, {failed} failed")
    return 1 if failed else 0


async def fetch_histories(settings: Settings, server: ServerHistories, folder: Path) -> list[Path]:
    """Write the histories ``server`` names into ``folder`` as JSON files (payloads stay encrypted)."""
    client = await connect(settings)
    histories = [await client.get_workflow_handle(key).fetch_history() for key in server.workflow_ids]
    if server.query is not None:
        listed = client.list_workflows(server.query, limit=server.limit)
        histories += [history async for history in listed.map_histories()]
    files: list[Path] = []
    for history in histories:
        # The replay reports the file's stem as the workflow id; a key is not a file name to trust as it is,
        # and a query can list several runs of one referral.
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", history.workflow_id)
        file = folder / f"{stem}.json"
        if file in files:
            file = folder / f"{stem}~{len(files)}.json"
        file.write_text(history.to_json())
        files.append(file)
    return files


async def run_rebuild_read_model(settings: Settings) -> int:
    """``rebuild-read-model``: every referral's row from Temporal into the service database; counts printed."""
    client = await connect(settings)
    database = open_database(settings.database())
    try:
        counts = await rebuild_read_model(client, referral_rows(client, database), settings.task_queue)
    finally:
        database.dispose()
    print(f"read model: {counts.written} rows written, {counts.current} already current, {counts.failed} failed")
    return 1 if counts.failed else 0
