"""Back-pressure on FHIR intake: a token bucket per referring source, so one EHR's burst (a re-sent backlog,
a loop) cannot crowd out the others, on every intake route (push, Bundle, Task, subscription deliveries).
Body sizes are the gate's (``api.gate``)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi.responses import Response

from fhir_mappings import outcomes
from referral_service.api.fhir_responses import outcome_response
from referral_service.config import IntakeLimits
from referral_service.logging import get_logger

log = get_logger()


def throttled(limiter: SourceRateLimiter, source_id: str) -> Response | None:
    """Take ``source_id``'s turn: ``None`` when it may go on, else the 429 (with ``Retry-After``) to answer."""
    wait = limiter.retry_after(source_id)
    if not wait:
        return None
    log.warning("intake throttled", source_id=source_id, retry_after=wait)
    busy = outcomes.throttled(f"too many referrals from {source_id}; retry after {wait} s")
    return outcome_response([busy], headers={"Retry-After": str(wait)})


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
