"""``referral-service dev``: the embedded stack in one process tree, stopped cleanly as a whole."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TypeVar

from referral_service.config import Settings
from referral_service.config.sources import SourceSettings
from referral_service.devstack import hapi_server, temporal_server
from referral_service.devstack.supervisor import Child, SupervisionPolicy, Supervisor
from referral_service.lifetime import exit_if_still_running_after, require_free

LOCAL_SOURCE_ID = "hapi-local"
DEFAULT_SUPERVISION = SupervisionPolicy()
T = TypeVar("T")


@dataclass(frozen=True)
class DevPorts:
    temporal: int = 7233
    temporal_ui: int = 8233
    hapi: int = 8080
    api: int = 8000


@dataclass(frozen=True)
class DevStack:
    """The servers that are up, and the settings that point a worker and the API at them."""

    settings: Settings
    hapi_base_url: str
    supervisor: Supervisor


@contextlib.asynccontextmanager
async def servers(
    settings: Settings,
    ports: DevPorts,
    hapi_heap: str = hapi_server.DEFAULT_HEAP,
    supervision: SupervisionPolicy = DEFAULT_SUPERVISION,
) -> AsyncIterator[DevStack]:
    """Start Temporal and HAPI (``-Xmx{hapi_heap}``) with state under ``settings.state_dir``, restart either if it
    dies or stops answering (``supervisor``); stop both on exit, whatever happens.

    Each server is recorded as soon as it is launched and waited for without blocking the event loop, so
    cancelling start-up (a signal while HAPI's JVM boots) stops it too rather than waiting for it or losing it.
    """
    state = settings.state_dir.resolve()
    logs = state / "logs"
    # A taken port fails start-up now, not after a minute of HAPI booting into an error.
    require_free("127.0.0.1", ports.temporal, "--temporal-port")
    require_free("127.0.0.1", ports.temporal_ui, "--ui-port")
    require_free("127.0.0.1", ports.hapi, "--hapi-port")
    children: list[Child] = []
    supervising: asyncio.Task[None] | None = None
    try:
        spawn_temporal = functools.partial(
            temporal_server.spawn,
            port=ports.temporal,
            ui_port=ports.temporal_ui,
            db_file=state / "temporal.sqlite",
            log_path=logs / "temporal.log",
        )
        temporal_ready = functools.partial(temporal_server.accepts_connections, ports.temporal)
        children.append(
            Child("Temporal", spawn_temporal, temporal_ready, temporal_server.STARTUP_TIMEOUT_S, spawn_temporal())
        )
        jar = await asyncio.to_thread(hapi_server.build_jar)
        spawn_hapi = functools.partial(
            hapi_server.spawn,
            jar=jar,
            port=ports.hapi,
            log_path=logs / "hapi.log",
            db_path=state / "hapi-db",
            heap=hapi_heap,
        )
        base_url = hapi_server.base_url(ports.hapi)
        hapi_ready = functools.partial(hapi_server.metadata_ready, base_url)
        children.append(Child("HAPI", spawn_hapi, hapi_ready, hapi_server.STARTUP_TIMEOUT_S, spawn_hapi()))
        # Both boot at once; HAPI's JVM is by far the slower.
        for child in children:
            await child.process.until_ready(child.probe, child.startup_timeout_s)
        supervisor = Supervisor(children, supervision)
        supervising = asyncio.create_task(supervisor.run(), name="the dev stack's supervisor")
        # Polled every minute too, so a ServiceRequest written straight into HAPI shows up as a referral.
        local = SourceSettings(id=LOCAL_SOURCE_ID, base_url=base_url, poll=True, poll_interval_seconds=60)
        yield DevStack(
            settings=settings.model_copy(
                update={
                    "temporal_address": f"127.0.0.1:{ports.temporal}",
                    "temporal_ui_url": f"http://127.0.0.1:{ports.temporal_ui}",
                    "api_port": ports.api,
                    "sources": (*[s for s in settings.sources if s.id != LOCAL_SOURCE_ID], local),
                }
            ),
            hapi_base_url=base_url,
            supervisor=supervisor,
        )
    finally:
        if supervising is not None:
            supervising.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervising
        # Independent servers by now (the worker and the API are gone): stop them side by side, in what is
        # left of the grace period once in-flight activities had theirs (lifetime.activity_grace).
        grace_s = settings.shutdown_grace_seconds / 4
        await asyncio.gather(*(asyncio.to_thread(child.process.stop, grace_s) for child in children))


def stop_on_signals(grace_s: float) -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, so shutdown runs our ``finally`` blocks instead of dying mid-way.

    Installed before anything starts, and whatever SIGINT's disposition was (a background job inherits it
    ignored): from then on either signal always ends in a clean stop, never in orphaned servers. From the
    first signal on the process has ``grace_s`` to end; past that it exits, unfinished, non-zero.
    """
    stop = asyncio.Event()

    def on_signal() -> None:
        if not stop.is_set():
            stop.set()
            exit_if_still_running_after(grace_s)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return stop


async def unless_stopped(stop: asyncio.Event, awaitable: Awaitable[T]) -> T | None:
    """The result of ``awaitable``; or, if ``stop`` is set first, None once ``awaitable`` is cancelled and done.

    Cancelling it runs its ``finally`` blocks (e.g. ``servers`` stopping what it had started) before we return.
    """
    work = asyncio.ensure_future(awaitable)
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([work, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
    return None if work.cancelled() else work.result()
