"""A child server process that is started in its own process group and always stopped with it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class ServerStartError(RuntimeError):
    """A server did not become ready; the message names it and where its log is."""


def free_port(below: int | None = None) -> int:
    """A loopback port that is free right now: the OS picks it, or, with ``below``, one under that bound (the
    OS picks from its ephemeral range, 32768 and up here, too high for a server that stores its port as a
    signed 16-bit number)."""
    if below is None:
        return _bind_free(0)
    for _ in range(100):
        with contextlib.suppress(OSError):
            return _bind_free(_random.randrange(10_000, below))
    raise ServerStartError(f"no free loopback port found below {below}")


def _bind_free(port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        return int(sock.getsockname()[1])


_random = random.SystemRandom()


def tree_cpu_seconds(roots: set[int]) -> float:
    """CPU time (user + system) used so far by the processes ``roots`` and every live descendant (a server's
    workers count, e.g. PostgreSQL's backends, which leave our session), plus the children they have reaped.
    Linux."""
    stats: dict[int, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # a process that ended while we looked
            # The fields after the parenthesised name: ppid is [1], utime, stime, cutime, cstime [11:15].
            stats[int(stat.parent.name)] = stat.read_text().rpartition(")")[2].split()
    tree = set(roots)
    while grown := {pid for pid, fields in stats.items() if int(fields[1]) in tree} - tree:
        tree |= grown
    ticks = sum(int(field) for pid in tree & stats.keys() for field in stats[pid][11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class ManagedProcess:
    """A started server: its name, process and log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> ManagedProcess:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            # A new session makes the server its own process group, so stop() reaches its children too.
            process = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        return cls(name=name, process=process, log_path=log_path)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        """CPU time used so far by the process and its descendants (``tree_cpu_seconds``)."""
        return tree_cpu_seconds({self.process.pid})

    def wait_ready(self, probe: Callable[[], bool], timeout_s: float) -> None:
        """Poll ``probe`` until it is true; fail fast if the process dies first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            if probe():
                return
            time.sleep(0.5)
        self.stop()
        raise self._not_ready(timeout_s)

    async def until_ready(self, probe: Callable[[], bool], timeout_s: float) -> None:
        """``wait_ready`` that leaves the event loop free, so a signal can cancel it; the caller then stops us."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            if await asyncio.to_thread(probe):
                return
            await asyncio.sleep(0.5)
        await asyncio.to_thread(self.stop)
        raise self._not_ready(timeout_s)

    def _check_alive(self) -> None:
        if not self.running:
            raise ServerStartError(f"{self.name} exited with code {self.process.returncode}; see {self.log_path}")

    def _not_ready(self, timeout_s: float) -> ServerStartError:
        return ServerStartError(f"{self.name} was not ready after {timeout_s:.0f}s; see {self.log_path}")

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left after ``grace_s``."""
        if not self.running:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL at once (fault-injection tests)."""
        if self.running:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=10)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
