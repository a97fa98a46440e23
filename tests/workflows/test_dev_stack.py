"""``referral-service dev`` end to end: the real servers come up, print their URLs and all stop on one signal.

The command runs as a subprocess in its own session, like a terminal's foreground job. Its servers (the Temporal
dev server and the HAPI FHIR JVM) run in sessions of their own, so a leftover is looked for three ways: any
process in the command's session, any process ever seen below it (by pid and start time, so a reused pid is
not mistaken for it), and any process whose command line names this run's private state folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

from referral_service.devstack.process import free_port
from referral_service.devstack.temporal_server import accepts_connections

pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]

COMMAND = Path(sys.executable).parent / "referral-service"
READY_TIMEOUT_S = 330.0  # past the stack's own 300 s for HAPI, whose JVM took 30-270 s on a busy two-core machine
EXIT_TIMEOUT_S = 60.0
PROC = Path("/proc")


@dataclass(frozen=True)
class Proc:
    """A process as /proc shows it; ``pid`` and ``start`` together name it even after its pid is reused."""

    pid: int
    ppid: int
    session: int
    start: int
    state: str
    cmdline: str


def processes() -> list[Proc]:
    """Every process on the machine, zombies excluded (they have exited and hold no ports)."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it exited while we looked
            continue
        # "pid (comm) state ppid pgrp session ... starttime": comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        proc = Proc(int(entry.name), int(fields[1]), int(fields[3]), int(fields[19]), fields[0], cmdline)
        if proc.state != "Z":
            found.append(proc)
    return found


def descendants(root: int, everything: list[Proc]) -> set[Proc]:
    children: dict[int, list[Proc]] = {}
    for proc in everything:
        children.setdefault(proc.ppid, []).append(proc)
    found: set[Proc] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child.pid)
    return found


@dataclass
class DevRun:
    """One ``referral-service dev`` subprocess and what it has been seen to start."""

    process: subprocess.Popen[bytes]
    log_path: Path
    state_dir: Path
    ports: dict[str, int]
    seen: set[Proc] = field(default_factory=set)

    def look(self) -> list[Proc]:
        """Record the process tree below the command (servers are reparented once it dies, so look often)."""
        everything = processes()
        self.seen |= descendants(self.process.pid, everything)
        return everything

    def leftovers(self) -> list[Proc]:
        """Processes of this run that are still alive."""
        everything = processes()
        seen = {(p.pid, p.start) for p in self.seen}
        return [
            proc
            for proc in everything
            if proc.session == self.process.pid
            or (proc.pid, proc.start) in seen
            or (str(self.state_dir) in proc.cmdline and proc.pid != os.getpid())
        ]

    def log(self, lines: int = 80) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def with_log(self, message: str) -> str:
        return f"{message}\n--- referral-service dev log (tail) ---\n{self.log()}"

    def fail(self, message: str) -> NoReturn:
        pytest.fail(self.with_log(message), pytrace=False)

    def stop(self, sig: signal.Signals) -> tuple[int, float]:
        """Send ``sig`` to the command alone (not its group); return its exit code and how long it took."""
        self.look()
        sent = time.monotonic()
        self.process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=EXIT_TIMEOUT_S)
        if self.process.returncode is None:
            self.fail(f"still running {EXIT_TIMEOUT_S:.0f}s after {sig.name}")
        return self.process.returncode, time.monotonic() - sent


@contextlib.contextmanager
def dev_stack(tmp_path: Path) -> Iterator[DevRun]:
    """Start ``referral-service dev`` on free ports with a private state folder; SIGKILL all of it afterwards."""
    ports = {name: free_port() for name in ("temporal", "ui", "hapi", "api")}
    state_dir = tmp_path / "state"
    log_path = tmp_path / "dev.log"
    argv = [str(COMMAND), "dev", "--state-dir", str(state_dir)]
    argv += ["--temporal-port", str(ports["temporal"]), "--ui-port", str(ports["ui"])]
    argv += ["--hapi-port", str(ports["hapi"]), "--api-port", str(ports["api"])]
    env = {name: value for name, value in os.environ.items() if not name.startswith("IOP_")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd=tmp_path,
        )
    run = DevRun(process, log_path, state_dir, ports)
    try:
        yield run
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        for proc in run.leftovers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)


def get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5.0)
    except httpx.HTTPError:
        return None


def banner_urls(ports: dict[str, int]) -> list[str]:
    return [
        f"http://127.0.0.1:{ports['api']}/",
        f"127.0.0.1:{ports['temporal']}",
        f"(UI http://127.0.0.1:{ports['ui']})",
        f"http://127.0.0.1:{ports['hapi']}/fhir",
    ]


def not_ready(run: DevRun) -> list[str]:
    """What is not up yet (empty once everything is)."""
    ports = run.ports
    missing = []
    hapi = get(f"http://127.0.0.1:{ports['hapi']}/fhir/metadata")
    if not (hapi and hapi.status_code == 200 and hapi.json().get("resourceType") == "CapabilityStatement"):
        missing.append("HAPI /fhir/metadata")
    elif hapi.json().get("fhirVersion") != "4.0.1":
        run.fail(f"HAPI is not FHIR 4.0.1: fhirVersion={hapi.json().get('fhirVersion')!r}")
    ui = get(f"http://127.0.0.1:{ports['ui']}/")
    if not (ui and ui.status_code == 200):
        missing.append("Temporal UI")
    api = get(f"http://127.0.0.1:{ports['api']}/readyz")
    if not (api and api.status_code == 200 and api.json()["status"] == "ready"):
        missing.append("API /readyz")
    log = run.log_path.read_text(errors="replace")
    missing += [f"banner line with {url}" for url in banner_urls(ports) if url not in log]
    return missing


def wait_until_ready(run: DevRun) -> float:
    """Seconds from launch until every server answers and the banner names them; fails with the log otherwise."""
    started = time.monotonic()
    missing = ["everything"]
    while time.monotonic() - started < READY_TIMEOUT_S:
        run.look()
        if run.process.poll() is not None:
            run.fail(f"referral-service dev exited with code {run.process.returncode} before it was ready")
        missing = not_ready(run)
        if not missing:
            return time.monotonic() - started
        time.sleep(1.0)
    pytest.fail(run.with_log(f"not ready after {READY_TIMEOUT_S:.0f}s; missing: {', '.join(missing)}"), pytrace=False)


def assert_all_gone(run: DevRun) -> None:
    deadline = time.monotonic() + 5.0  # a process that is exiting may linger for a moment
    while (left := run.leftovers()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, "left running:\n" + "\n".join(f"  {p.pid} (session {p.session}) {p.cmdline}" for p in left)
    open_ports = {name: port for name, port in run.ports.items() if accepts_connections(port)}
    assert not open_ports, f"ports still accepting connections: {open_ports}"


def test_dev_starts_every_server_and_sigint_to_the_command_alone_stops_them_all(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole foreground group; SIGINT to the command alone is the harder case."""
    with dev_stack(tmp_path) as run:
        ready_s = wait_until_ready(run)
        servers = {p.cmdline.split()[0].rsplit("/", 1)[-1] for p in run.seen}
        assert {"temporal", "java"} <= servers, f"expected the Temporal and HAPI servers below the command: {servers}"

        code, exit_s = run.stop(signal.SIGINT)

        print(f"\nreferral-service dev: ready in {ready_s:.1f}s, exited {exit_s:.1f}s after SIGINT")
        assert code == 0, f"exit code {code}\n{run.log()}"
        assert_all_gone(run)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_the_stack_is_still_starting_stops_what_has_started(tmp_path: Path, sig: signal.Signals) -> None:
    """Stopping during start-up, while HAPI's JVM is booting, must not wait for it nor leave it behind."""
    with dev_stack(tmp_path) as run:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not any("java" in p.cmdline for p in descendants(run.process.pid, run.look())):
            if run.process.poll() is not None or time.monotonic() > deadline:
                run.fail("HAPI was never started")
            time.sleep(0.2)

        code, exit_s = run.stop(sig)

        print(f"\nreferral-service dev: exited {exit_s:.1f}s after {sig.name} during start-up")
        assert code == 0, f"exit code {code}\n{run.log()}"
        assert_all_gone(run)
