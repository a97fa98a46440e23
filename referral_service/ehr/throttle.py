"""Back-pressure toward one EHR: at most ``max_in_flight`` calls at once and ``per_second`` calls a second, and no
call at all while the EHR has asked us (``429``/``503`` with ``Retry-After``) to hold off.

A call that cannot start within ``max_wait_seconds`` is not sent: it fails with ``ThrottledError`` (a
``TransientError`` carrying the wait), so an activity hands itself back to Temporal with that retry delay instead of
holding a worker slot past its timeout. The rate can be this process's own (``LocalRate``) or one shared by every
process of a deployment (``referral_service.store.ehr_rates.SharedRate``, a token bucket in the service database).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from referral_service.ehr.errors import ThrottledError


@dataclass(frozen=True, slots=True)
class CallLimits:
    """How hard one EHR may be called: ``burst`` calls may go at once after a quiet spell, then ``per_second``."""

    max_in_flight: int = 8
    per_second: float = 50.0
    burst: int = 10
    max_wait_seconds: float = 20.0
    shared: bool = False  # the per-second budget is the deployment's: ``share`` gives it the shared bucket

    def __post_init__(self) -> None:
        if self.max_in_flight < 1 or self.burst < 1 or not self.per_second > 0 or not self.max_wait_seconds > 0:
            raise ValueError("call limits must be positive")


class RateGate(Protocol):
    """A token bucket: ``take`` spends a token and answers 0, or answers how long until one may be there."""

    async def take(self) -> float: ...

    async def hold_off(self, seconds: float) -> None:
        """No token for anyone until ``seconds`` from now (the EHR's ``Retry-After``)."""
        ...


class LocalRate:
    """A token bucket in this process (``clock`` is seconds, monotonic)."""

    def __init__(self, limits: CallLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._burst, self._clock = limits.per_second, float(limits.burst), clock
        self._tokens, self._refilled_at, self._blocked_until = self._burst, clock(), 0.0

    async def take(self) -> float:
        now = self._clock()
        if now < self._blocked_until:
            return self._blocked_until - now
        self._tokens = min(self._burst, self._tokens + (now - self._refilled_at) * self._rate)
        self._refilled_at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate

    async def hold_off(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)


class SourceThrottle:
    """The limits of one source, shared by every client of it in this process."""

    def __init__(self, source_id: str, limits: CallLimits, rate: RateGate | None = None) -> None:
        self.source_id = source_id
        self.limits = limits
        self.rate: RateGate = rate or LocalRate(limits)
        self._slots = asyncio.Semaphore(limits.max_in_flight)

    @contextlib.asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        """Hold a slot and a token for one call; ``ThrottledError`` if they are not there within ``max_wait``."""
        deadline = time.monotonic() + self.limits.max_wait_seconds
        try:
            await asyncio.wait_for(self._slots.acquire(), self.limits.max_wait_seconds)
        except TimeoutError:
            raise ThrottledError(
                f"{self.limits.max_in_flight} calls already in flight", retry_after=self.limits.max_wait_seconds
            ) from None
        try:
            # A slot first, then a token: a shared token is never spent by a call that cannot go yet.
            while (wait := await self.rate.take()) > 0:
                if time.monotonic() + wait > deadline:
                    raise ThrottledError(f"over {self.limits.per_second:g} calls a second", retry_after=wait)
                await asyncio.sleep(wait)
            yield
        finally:
            self._slots.release()

    async def hold_off(self, seconds: float) -> None:
        await self.rate.hold_off(seconds)

    def share(self, rate: RateGate) -> None:
        """Take tokens from ``rate`` from now on (a bucket every process of the deployment shares)."""
        self.rate = rate
