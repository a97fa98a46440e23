"""Waiting in tests for what another process does (a worker, visibility, an EHR delivery)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(probe: Callable[[], Awaitable[Any]], what: str, patience_s: float = 60.0) -> Any:
    """Poll ``probe`` until it returns something truthy, and return that; fail naming ``what`` after
    ``patience_s``."""
    deadline = time.monotonic() + patience_s
    while not (result := await probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {patience_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.25)
    return result
