"""The intake rate limit in the service database, on SQLite and PostgreSQL: a burst is let through, then one
referral per refill interval, each source on its own; and it holds as one limit for every process (engine)
taking turns at once, never granting a token twice."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine, text

from referral_service.config.limits import IntakeLimits
from referral_service.devstack.postgres_server import PostgresServer
from referral_service.store.database import open_database
from referral_service.store.intake_rates import IntakeRates


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_wait_then_one_more_per_refill_and_sources_are_independent(engine: Engine) -> None:
    clock = Clock()
    rates = IntakeRates(engine, IntakeLimits(per_source_per_minute=6, burst=3), clock=clock)

    assert [rates.take("st-marys") for _ in range(3)] == [0, 0, 0]
    assert rates.take("st-marys") == 10  # 6 a minute: the next token in 10 s
    assert rates.take("county-general") == 0

    clock.now += 9.5
    assert rates.take("st-marys") == 1
    clock.now += 0.5
    assert rates.take("st-marys") == 0
    assert rates.take("st-marys") == 10


def test_an_idle_source_refills_to_its_burst_not_beyond(engine: Engine) -> None:
    clock = Clock()
    rates = IntakeRates(engine, IntakeLimits(per_source_per_minute=60, burst=2), clock=clock)
    assert [rates.take("a") for _ in range(2)] == [0, 0]

    clock.now += 3600
    assert [rates.take("a") for _ in range(3)] == [0, 0, 1]


def test_a_host_whose_clock_is_behind_refills_nothing_early(engine: Engine) -> None:
    ahead, behind = Clock(), Clock()
    behind.now -= 30
    limits = IntakeLimits(per_source_per_minute=6, burst=1)
    here, there = IntakeRates(engine, limits, clock=ahead), IntakeRates(engine, limits, clock=behind)
    assert here.take("a") == 0
    assert there.take("a") == 10  # not -30 s of refill, and not 40 s to wait either
    behind.now += 30
    assert there.take("a") == 10  # the row's time did not go back: still nothing refilled


def test_processes_taking_turns_at_once_share_one_burst(database_url: str) -> None:
    """Four processes (engines), eight threads each, 200 requests for a burst of 50 with no refill: exactly 50
    are let through, whichever process each request reached."""
    clock = Clock()
    limits = IntakeLimits(per_source_per_minute=0.001, burst=50)
    engines = [open_database(database_url) for _ in range(4)]
    processes = [IntakeRates(engine, limits, clock=clock) for engine in engines]
    with ThreadPoolExecutor(32) as requests:
        waits = list(requests.map(lambda n: processes[n % 4].take("st-marys"), range(200)))
    for engine in engines:
        engine.dispose()
    assert waits.count(0) == 50
    assert all(wait >= 1 for wait in waits if wait)  # each refused one told when to come back


def test_on_postgresql_the_buckets_wait_for_no_wal_flush(postgres: PostgresServer) -> None:
    """UNLOGGED: a commit that touches the buckets alone does not wait for the disk (every intake request)."""
    name = f"service_{uuid.uuid4().hex[:8]}"
    postgres.create_database(name)
    engine = open_database(postgres.url(name))
    with engine.connect() as db:
        persistence = db.scalar(text("SELECT relpersistence FROM pg_class WHERE relname = 'intake_rate_buckets'"))
    engine.dispose()
    assert persistence == "u"
