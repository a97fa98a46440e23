"""A test peer's ASGI app (token endpoint, OpenID provider) served by uvicorn in a thread on loopback."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from referral_service.devstack.process import free_port
from referral_service.runners import QuietApiServer


@contextlib.contextmanager
def serving_asgi(app: ASGIApp) -> Iterator[str]:
    """``app`` on a free loopback port until the block ends; yields its base URL."""
    port = free_port()
    server = QuietApiServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 30s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
