"""The per-source intake rate: a burst is let through, then one referral per refill interval."""

from __future__ import annotations

from referral_service.api.intake_limits import SourceRateLimiter
from referral_service.config import IntakeLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_wait_then_one_more_per_refill_and_sources_are_independent() -> None:
    clock = Clock()
    limiter = SourceRateLimiter(IntakeLimits(per_source_per_minute=6, burst=3), clock=clock)

    assert [limiter.retry_after("st-marys") for _ in range(3)] == [0, 0, 0]
    assert limiter.retry_after("st-marys") == 10  # 6 a minute: the next token in 10 s
    assert limiter.retry_after("county-general") == 0

    clock.now += 9.5
    assert limiter.retry_after("st-marys") == 1
    clock.now += 0.5
    assert limiter.retry_after("st-marys") == 0
    assert limiter.retry_after("st-marys") == 10


def test_an_idle_source_refills_to_its_burst_not_beyond() -> None:
    clock = Clock()
    limiter = SourceRateLimiter(IntakeLimits(per_source_per_minute=60, burst=2), clock=clock)
    assert [limiter.retry_after("a") for _ in range(2)] == [0, 0]

    clock.now += 3600
    assert [limiter.retry_after("a") for _ in range(3)] == [0, 0, 1]
