"""The deployment-wide call budget toward an EHR (``store.ehr_rates``) on SQLite and PostgreSQL: a token goes to
exactly one caller however many processes ask at once, refills at the configured rate, and an EHR's
``Retry-After`` held off by one process holds every process off. Clocks are given, not read, so nothing is timed."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine

from referral_service.ehr.throttle import CallLimits, SourceThrottle
from referral_service.store.database import open_database
from referral_service.store.ehr_rates import SharedRate, share_rates

LIMITS = CallLimits(max_in_flight=4, per_second=10.0, burst=5, shared=True)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_burst_then_the_rate(engine: Engine):
    clock = Clock()
    rate = SharedRate(engine, "ehr-a", LIMITS, clock)
    assert [await rate.take() for _ in range(5)] == [0.0] * 5
    assert await rate.take() == pytest.approx(0.1)  # one token a tenth of a second later
    clock.now += 0.25
    assert [await rate.take() for _ in range(3)] == [0.0, 0.0, pytest.approx(0.05)]  # 2.5 tokens refilled


async def test_processes_share_one_bucket_and_each_token_goes_to_one_caller(database_url: str, engine: Engine):
    """Two engines stand for two processes; 40 callers at once from threads: exactly the burst is granted."""
    other = open_database(database_url)
    clock = Clock()
    rates = [SharedRate(e, "ehr-b", LIMITS, clock) for e in (engine, other)]
    try:
        with ThreadPoolExecutor(8) as pool:
            waits = list(pool.map(lambda n: asyncio.run(rates[n % 2].take()), range(40)))
    finally:
        other.dispose()
    assert waits.count(0.0) == LIMITS.burst
    assert all(w > 0 for w in waits if w != 0.0)


async def test_retry_after_from_one_process_holds_every_process_off(database_url: str, engine: Engine):
    other = open_database(database_url)
    clock = Clock()
    mine, theirs = SharedRate(engine, "ehr-c", LIMITS, clock), SharedRate(other, "ehr-c", LIMITS, clock)
    try:
        await mine.hold_off(30)
        await mine.hold_off(5)  # a shorter wait does not cut the longer one short
        assert await theirs.take() == pytest.approx(30)
        clock.now += 30
        assert await theirs.take() == 0.0
        assert await SharedRate(engine, "ehr-d", LIMITS, clock).take() == 0.0  # other sources are not held off
    finally:
        other.dispose()


async def test_share_rates_gives_shared_sources_the_database_bucket(database_url: str):
    shared, own = SourceThrottle("ehr-e", LIMITS), SourceThrottle("ehr-f", CallLimits())
    local = own.rate
    share_rates(database_url, [shared, own])
    assert isinstance(shared.rate, SharedRate)
    assert own.rate is local
