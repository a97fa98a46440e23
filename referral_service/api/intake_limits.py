"""Back-pressure on FHIR intake: a cap on body size, read without buffering more than the cap, and a token
bucket per referring source, so one EHR's burst (a re-sent backlog, a loop) cannot crowd out the others."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from referral_service.config import IntakeLimits


async def read_body(request: Request, max_bytes: int) -> bytes | None:
    """The request body, or ``None`` as soon as it is known to exceed ``max_bytes``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class SourceRateLimiter:
    """``per_minute`` referrals per source on average, up to ``burst`` at once."""

    limits: IntakeLimits
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def retry_after(self, source_id: str) -> int:
        """Take a token for ``source_id``: 0 when granted, else whole seconds until one is free."""
        rate = self.limits.per_source_per_minute / 60
        now = self.clock()
        bucket = self._buckets.setdefault(source_id, _Bucket(tokens=self.limits.burst, updated=now))
        bucket.tokens = min(self.limits.burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / rate))
