"""How a server process starts and ends: a fatal start-up error exits non-zero at once (its supervisor restarts
it), its listening sockets are bound before anything else starts, and SIGTERM ends it within its grace period."""

from __future__ import annotations

import os
import socket
import threading
from datetime import timedelta

from referral_service.logging import get_logger

log = get_logger()

# The exit code of a process that could not start, or whose shutdown overran its grace period.
EXIT_FAILED = 1


class StartupError(RuntimeError):
    """The process cannot do its job (a port taken, Temporal unreachable past its retries, a program file that
    does not load): the message says why in one line, and the process exits ``EXIT_FAILED``."""


def listen(host: str, port: int, setting: str) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: one the OS picks), for uvicorn to serve on. Binding here,
    before the worker or the API starts, turns a taken port into a ``StartupError`` naming ``setting``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # A restarted process may take its port back while the old connections linger in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port} ({setting}): {error.strerror or error}") from None
    return sock


def require_free(host: str, port: int, setting: str) -> None:
    """``StartupError`` when ``host:port`` is taken (for a port a child server will bind)."""
    listen(host, port, setting).close()


def activity_grace(grace_s: float) -> timedelta:
    """How long in-flight activities may run on after SIGTERM before they are cancelled (and Temporal retries
    them elsewhere): two thirds of the grace period, leaving the rest to close connections and stop servers."""
    return timedelta(seconds=grace_s * 2 / 3)


def exit_if_still_running_after(grace_s: float) -> None:
    """Arm a timer that ends the process (``EXIT_FAILED``) if its shutdown is not done within ``grace_s``:
    a thread, so that an event loop stuck on some call cannot hold it up."""
    timer = threading.Timer(grace_s, _overdue, args=(grace_s,))
    timer.daemon = True
    timer.start()


def _overdue(grace_s: float) -> None:
    log.error(f"shutdown still running after its grace period ({grace_s:.0f}s): exiting with work unfinished")
    os._exit(EXIT_FAILED)
