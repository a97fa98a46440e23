"""``referral-service dev``: the embedded stack in one process tree, stopped cleanly as a whole."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

from referral_service.config import Settings, SourceSettings
from referral_service.devstack import hapi_server, temporal_server
from referral_service.devstack.process import ManagedProcess

LOCAL_SOURCE_ID = "hapi-local"


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


@contextlib.asynccontextmanager
async def servers(settings: Settings, ports: DevPorts) -> AsyncIterator[DevStack]:
    """Start Temporal and HAPI with state under ``settings.state_dir``; stop both on exit, whatever happens."""
    state = settings.state_dir.resolve()
    logs = state / "logs"
    started: list[ManagedProcess] = []
    try:
        started.append(
            await asyncio.to_thread(
                temporal_server.start,
                port=ports.temporal,
                ui_port=ports.temporal_ui,
                db_file=state / "temporal.sqlite",
                log_path=logs / "temporal.log",
            )
        )
        jar = await asyncio.to_thread(hapi_server.build_jar)
        hapi, base_url = await asyncio.to_thread(
            hapi_server.start,
            jar=jar,
            port=ports.hapi,
            log_path=logs / "hapi.log",
            db_path=state / "hapi-db",
        )
        started.append(hapi)
        local = SourceSettings(id=LOCAL_SOURCE_ID, base_url=base_url)
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
        )
    finally:
        for server in reversed(started):
            await asyncio.to_thread(server.stop)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, so shutdown runs our ``finally`` blocks instead of dying mid-way."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
