"""The intake rate limit, shared by every API process: a token bucket per referring source in the service
database, so a source's burst is limited as one whichever process each of its requests lands on.

Each request is one statement: an upsert that refills the source's bucket for the time since it was last
touched, takes a token when a whole one is there, and hands back what is left and whether it took one.
PostgreSQL locks the row for the statement (``ON CONFLICT DO UPDATE`` sees the latest committed row), SQLite
holds its write lock: two processes never take the same token. Time is the API hosts' wall clock (kept in
step by NTP); a host running behind never refills a bucket early, since a row's time only moves forward.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from sqlalchemy import ColumnElement, Engine, case, literal

from referral_service.config.limits import IntakeLimits
from referral_service.store.database import insert_into
from referral_service.store.tables import intake_rate_buckets as buckets


class IntakeRates:
    """``limits.per_source_per_minute`` referrals per source on average, up to ``limits.burst`` at once."""

    def __init__(self, engine: Engine, limits: IntakeLimits, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._burst = float(limits.burst)
        self._per_second = limits.per_source_per_minute / 60
        self._clock = clock

    async def retry_after(self, source_id: str) -> int:
        """Take a token for ``source_id``: 0 when granted, else whole seconds until one is free."""
        return await asyncio.to_thread(self.take, source_id)

    def take(self, source_id: str) -> int:
        """``retry_after`` on the calling thread."""
        now = self._clock()
        refilled = _least(
            literal(self._burst),
            buckets.c.tokens + _greatest(literal(0.0), literal(now) - buckets.c.updated_at) * self._per_second,
        )
        whole = refilled >= 1
        insert = insert_into(self._engine, buckets).values(
            source_id=source_id, tokens=self._burst - 1, updated_at=now, granted=True
        )
        statement = insert.on_conflict_do_update(
            index_elements=[buckets.c.source_id],
            set_={
                "tokens": case((whole, refilled - 1), else_=refilled),
                "updated_at": _greatest(buckets.c.updated_at, literal(now)),
                "granted": whole,
            },
        ).returning(buckets.c.tokens, buckets.c.granted)
        with self._engine.begin() as db:
            tokens, granted = db.execute(statement).one()
        if granted:
            return 0
        return max(1, math.ceil((1 - float(tokens)) / self._per_second))


def _least(a: ColumnElement[float], b: ColumnElement[float]) -> ColumnElement[float]:
    """The smaller of two (SQLite's two-argument ``min`` and PostgreSQL's ``least`` differ in name)."""
    return case((a < b, a), else_=b)


def _greatest(a: ColumnElement[float], b: ColumnElement[float]) -> ColumnElement[float]:
    return case((a > b, a), else_=b)
