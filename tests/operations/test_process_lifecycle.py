"""How ``referral-service worker``, ``api`` and ``dev`` start and stop, as their supervisor sees it (real processes
against the Temporal dev server and HAPI): a process that cannot do its job exits non-zero at once saying why,
SIGTERM ends it within its grace period with the worker's in-flight activity handed back, and a worker and an
API on one host, both on their default ports, each serve their own health endpoints.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from temporalio.testing import WorkflowEnvironment

from referral_service.devstack import temporal_server
from referral_service.devstack.process import free_port
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from tests.auth_tokens import auth_settings
from tests.conftest import HAPI_SOURCE_ID
from tests.loopback_server import serving_asgi
from tests.operations.processes import running, service_env
from tests.polling import eventually
from tests.workflows.stories import end_leftovers, start_referral, written
from workflows.referral import ReferralWorkflow

pytestmark = pytest.mark.timeout(300)

# "At once": a process that cannot start says so within this, though it loads the Temporal SDK first.
AT_ONCE_S = 10.0


def _temporal_address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


def _exit_code(process: subprocess.Popen[bytes], within_s: float) -> tuple[int, float]:
    """The exit code and how long it took; fails if the process is still running after ``within_s``."""
    started = time.monotonic()
    try:
        code = process.wait(timeout=within_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {within_s:.0f}s on")
    return code, time.monotonic() - started


def _log_lines(log: Path) -> list[dict[str, Any]]:
    """The service's JSON log lines (uvicorn's own are plain text)."""
    return [json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]


def _log_events(log: Path) -> list[str]:
    return [line["event"] for line in _log_lines(log)]


def _serving_url(log: Path) -> str | None:
    """Where the process said it serves HTTP (its ``serving`` line), once it has."""
    return next((str(line["url"]) for line in _log_lines(log) if line["event"] == "serving"), None)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        yield squatter.getsockname()[1]


@pytest.mark.parametrize(("role", "setting"), [("worker", "worker_health_port"), ("api", "api_port")])
def test_a_taken_port_ends_the_process_at_once_saying_which(
    role: str, setting: str, taken_port: int, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    env = service_env(tmp_path, _temporal_address(temporal_env), f"taken-{uuid.uuid4()}")
    env[f"IOP_{setting.upper()}"] = str(taken_port)
    log = tmp_path / f"{role}.log"
    with running([role], env, log) as process:
        code, _ = _exit_code(process, AT_ONCE_S)
    assert code == 1, log.read_text()
    assert f"cannot start: cannot listen on 127.0.0.1:{taken_port} ({setting}): Address already in use" in _log_events(
        log
    )


def test_the_embedded_stack_with_its_api_port_taken_exits_before_starting_any_server(
    taken_port: int, tmp_path: Path
) -> None:
    env = service_env(tmp_path, "127.0.0.1:7233", "dev")
    ports = [f"--{name}-port={free_port()}" for name in ("temporal", "ui", "hapi")]
    log = tmp_path / "dev.log"
    with running(["dev", "--state-dir", str(tmp_path / "state"), *ports, f"--api-port={taken_port}"], env, log) as dev:
        code, _ = _exit_code(dev, AT_ONCE_S)
    assert code == 1, log.read_text()
    assert f"cannot start: cannot listen on 127.0.0.1:{taken_port} (--api-port): Address already in use" in (
        _log_events(log)
    )
    assert not (tmp_path / "state" / "logs").exists(), "neither Temporal nor HAPI should have been started"


def test_a_worker_waits_for_temporal_as_long_as_its_settings_say_then_exits_saying_so(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = service_env(tmp_path, address, "unreachable") | {"IOP_TEMPORAL_CONNECT_SECONDS": "4"}
    log = tmp_path / "worker.log"
    with running(["worker"], env, log) as worker:
        code, took_s = _exit_code(worker, 4 + AT_ONCE_S)
    events = _log_events(log)
    assert code == 1, log.read_text()
    assert took_s >= 3.5, f"gave up after {took_s:.1f}s, not after the 4s it was told to keep retrying"
    assert events.count("temporal unreachable, retrying") >= 2, events
    [reason] = [event for event in events if event.startswith("cannot start: ")]
    assert reason.startswith(f"cannot start: Temporal at {address} unreachable for 4s (temporal_connect_seconds)")


async def test_a_worker_started_before_temporal_waits_for_it_and_then_serves(tmp_path: Path) -> None:
    """As when a supervisor starts everything at once: Temporal comes up a few seconds after the worker."""
    port = free_port()
    env = service_env(tmp_path, f"127.0.0.1:{port}", "late-temporal") | {"IOP_TEMPORAL_CONNECT_SECONDS": "60"}
    log = tmp_path / "worker.log"
    with running(["worker"], env, log) as worker:
        await eventually(
            lambda: asyncio.to_thread(lambda: "temporal unreachable, retrying" in _log_events(log)),
            "the worker retrying",
        )
        temporal = temporal_server.spawn(
            port=port, ui_port=None, db_file=tmp_path / "temporal.sqlite", log_path=tmp_path / "temporal.log"
        )
        try:
            async with httpx.AsyncClient(timeout=10) as http:

                async def ready() -> dict[str, str] | None:
                    assert worker.poll() is None, "the worker exited: " + log.read_text()
                    try:
                        answer = await http.get(f"http://127.0.0.1:{env['IOP_WORKER_HEALTH_PORT']}/readyz")
                    except httpx.TransportError:
                        return None
                    checks: dict[str, str] = answer.json()["checks"]
                    return checks if answer.status_code == 200 else None

                assert await eventually(ready, "the worker ready") == {"temporal": "ok", "worker": "ok"}
        finally:
            worker.send_signal(signal.SIGTERM)
            await asyncio.to_thread(worker.wait, 30)
            await asyncio.to_thread(temporal.stop)


def test_a_program_file_that_does_not_load_ends_the_process_at_once_naming_it(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    program_file = tmp_path / "program.toml"
    program_file.write_text('name = "half a program"\n')
    env = service_env(tmp_path, _temporal_address(temporal_env), "no-program") | {"IOP_PROGRAM_FILE": str(program_file)}
    log = tmp_path / "worker.log"
    with running(["worker"], env, log) as worker:
        code, _ = _exit_code(worker, AT_ONCE_S)
    assert code == 1, log.read_text()
    assert [e for e in _log_events(log) if e.startswith(f"cannot start: program file {program_file} does not load")]


HOP_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection"})


class HeldEhr:
    """HAPI behind a gate: every request waits while the gate is closed (an EHR that has stopped answering),
    then goes through to HAPI as it is."""

    def __init__(self, hapi_base_url: str) -> None:
        self.hapi_base_url = hapi_base_url
        self.open = threading.Event()
        self.waiting = threading.Event()  # a request has arrived at the closed gate
        self.app = Starlette(routes=[Route("/fhir/{path:path}", self._forward, methods=["GET", "POST", "PUT"])])

    async def _forward(self, request: Request) -> Response:
        while not self.open.is_set():
            self.waiting.set()
            await asyncio.sleep(0.05)
        headers = {k: v for k, v in request.headers.items() if k not in ("host", "content-length", "accept-encoding")}
        async with httpx.AsyncClient(timeout=60) as http:
            answer = await http.request(
                request.method,
                f"{self.hapi_base_url}/{request.path_params['path']}",
                params=request.query_params.multi_items(),
                content=await request.body(),
                headers=headers,
            )
        kept = {
            k: v for k, v in answer.headers.items() if k not in ("content-length", "content-encoding", "connection")
        }
        return Response(answer.content, answer.status_code, headers=kept)


async def test_sigterm_ends_a_busy_worker_within_its_grace_period_and_its_activity_is_handed_back(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient, program: Program, tmp_path: Path
) -> None:
    """The EHR stops answering mid-write (the write's local try): SIGTERM still ends the worker, exit 0, within
    its 6 s grace period (the try is ended after two thirds of it and handed back to the workflow as an
    activity); a worker started later does the write."""
    ehr = HeldEhr(hapi_base_url)
    queue = f"sigterm-{uuid.uuid4()}"
    with serving_asgi(ehr.app) as ehr_url:
        config = f'[[sources]]\nid = "{HAPI_SOURCE_ID}"\nbase_url = "{ehr_url}/fhir"\ntimeout_seconds = 120\n'
        env = service_env(tmp_path, _temporal_address(temporal_env), queue, config) | {
            "IOP_SHUTDOWN_GRACE_SECONDS": "6",
            "IOP_WORKER_HEALTH_PORT": "0",  # a free one, logged
        }
        try:
            with running(["worker"], env, tmp_path / "first.log") as first:
                log = tmp_path / "first.log"
                health = await eventually(lambda: asyncio.to_thread(_serving_url, log), "the health address logged")
                async with httpx.AsyncClient() as http:
                    assert (await http.get(f"{health}/healthz")).json() == {"status": "ok"}
                handle = await start_referral(temporal_env, hapi_client, program, queue)
                await eventually(lambda: asyncio.to_thread(ehr.waiting.wait, 0.5), "the receipt write at the EHR")
                first.send_signal(signal.SIGTERM)
                code, took_s = await asyncio.to_thread(_exit_code, first, 6.0)
            assert code == 0, (tmp_path / "first.log").read_text()
            assert took_s > 3.5, f"exited after {took_s:.1f}s: the activity should have had 4s to finish"

            ehr.open.set()
            with running(["worker"], env, tmp_path / "second.log"):

                async def receipt_written() -> bool:
                    state = await handle.query(ReferralWorkflow.snapshot)
                    tasks = [key for key, write in state.writes.items() if write.resource_type == "Task"]
                    return bool(tasks) and len(await written(hapi_client, "Task", tasks[0])) == 1

                await eventually(receipt_written, "the receipt Task, written by the second worker", patience_s=90)
        finally:
            ehr.open.set()
            await end_leftovers(queue)


async def test_a_worker_and_an_api_on_one_host_on_their_default_ports_both_serve_health(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, tmp_path: Path
) -> None:
    """No port configured: the API on 8000 and the worker's health on 8001. They listen on a loopback address
    of their own (127.0.0.2), so nothing else on this machine that uses those defaults is in the way; beyond
    127.0.0.1 the API requires [auth]."""
    auth = auth_settings(tmp_path)
    config = (
        f'[[sources]]\nid = "{HAPI_SOURCE_ID}"\nbase_url = "{hapi_base_url}"\n\n'
        f'[auth]\nissuer = "{auth.issuer}"\naudience = "{auth.audience}"\njwks_file = "{auth.jwks_file}"\n'
        f'program = "{auth.program}"\n'
    )
    env = service_env(tmp_path, _temporal_address(temporal_env), f"defaults-{uuid.uuid4()}", config)
    env = {k: v for k, v in env.items() if k not in ("IOP_API_PORT", "IOP_WORKER_HEALTH_PORT")}
    env |= {"IOP_API_HOST": "127.0.0.2", "IOP_WORKER_HEALTH_HOST": "127.0.0.2"}
    with (
        running(["api"], env, tmp_path / "api.log") as api,
        running(["worker"], env, tmp_path / "worker.log") as worker,
    ):
        async with httpx.AsyncClient(timeout=10) as http:

            async def ready(url: str) -> dict[str, str] | None:
                for role, process in (("api", api), ("worker", worker)):
                    assert process.poll() is None, f"the {role} exited: " + (tmp_path / f"{role}.log").read_text()
                try:
                    answer = await http.get(url)
                except httpx.TransportError:
                    return None
                checks: dict[str, str] = answer.json()["checks"]
                return checks if answer.status_code == 200 else None

            api_checks = await eventually(lambda: ready("http://127.0.0.2:8000/readyz"), "the API ready")
            worker_checks = await eventually(lambda: ready("http://127.0.0.2:8001/readyz"), "the worker ready")
            assert worker_checks == {"temporal": "ok", f"ehr:{HAPI_SOURCE_ID}": "ok", "worker": "ok"}
            assert api_checks == {"temporal": "ok", f"ehr:{HAPI_SOURCE_ID}": "ok"}
            assert (await http.get("http://127.0.0.2:8001/api/referrals")).status_code == 404, "the worker's own"
        for process in (api, worker):
            process.send_signal(signal.SIGTERM)
        assert [process.wait(timeout=30) for process in (api, worker)] == [0, 0]
