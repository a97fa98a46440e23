"""``referral-service`` processes in tests: their environment (free ports, never the defaults; the test key
ring; JSON logs) and their lifetime (always gone when the test ends, whatever it did)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from referral_service.devstack.process import free_port
from tests.conftest import TEST_KEY_RING
from tests.polling import eventually

COMMAND = Path(sys.executable).with_name("referral-service")


def service_env(folder: Path, temporal_address: str, task_queue: str, config_toml: str = "") -> dict[str, str]:
    """The environment of a worker or API process: none of the caller's ``IOP_*``, the settings file
    ``config_toml``, the test key ring, and free ports for the API and the worker's health endpoints."""
    config = folder / "service.toml"
    config.write_text(config_toml)
    keys = {
        "active": TEST_KEY_RING.active_key_id,
        "keys": {k: base64.b64encode(v).decode() for k, v in TEST_KEY_RING.keys.items()},
    }
    return {k: v for k, v in os.environ.items() if not k.startswith("IOP_")} | {
        "IOP_CONFIG": str(config),
        "IOP_TEMPORAL_ADDRESS": temporal_address,
        "IOP_TASK_QUEUE": task_queue,
        "IOP_STATE_DIR": str(folder / "state"),
        "IOP_CODEC_KEYS": json.dumps(keys),
        "IOP_LOG_FORMAT": "json",
        "IOP_API_PORT": str(free_port()),
        "IOP_WORKER_HEALTH_PORT": str(free_port()),
    }


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``referral-service *args`` in a process group of its own, its output in ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(COMMAND), *args], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``start``; at the end, if it is still there, SIGTERM (``dev`` stops the servers it started, which run in
    sessions of their own), then SIGKILL to its process group."""
    process = start(args, env, log)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


async def until_ready(http: httpx.AsyncClient, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait for ``url`` (a ``/readyz``) to answer 200; fail at once, with the log's end, if the process exits."""

    async def ready() -> bool:
        assert process.poll() is None, f"exited with {process.returncode}:\n{_tail(log)}"
        try:
            return (await http.get(url)).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(ready, f"{url} ready", patience_s=90)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]
