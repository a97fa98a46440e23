"""A per-second call budget toward one EHR, shared by every worker and API process of a deployment: a token bucket
row per source in the service database, spent by one conditional ``UPDATE`` (atomic on SQLite and PostgreSQL alike:
a token is granted to exactly one caller, whatever the concurrency).

Times are the processes' wall clocks (seconds since the epoch), so the hosts' clocks must agree to well under a
token's period (NTP does); a clock behind only makes its process wait longer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from sqlalchemy import ColumnElement, Engine, case, literal, select, update

from referral_service.ehr.throttle import CallLimits, SourceThrottle
from referral_service.store.database import insert_into, open_database
from referral_service.store.tables import ehr_rate_buckets as buckets


class SharedRate:
    """``ehr.throttle.RateGate`` on the service database's ``ehr_rate_buckets`` row of ``source_id``."""

    def __init__(
        self, engine: Engine, source_id: str, limits: CallLimits, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine, self._source_id, self._clock = engine, source_id, clock
        self._rate, self._burst = limits.per_second, float(limits.burst)
        self._row_made = False

    async def take(self) -> float:
        return await asyncio.to_thread(self._take)

    async def hold_off(self, seconds: float) -> None:
        await asyncio.to_thread(self._hold_off, seconds)

    def _take(self) -> float:
        self._make_row()
        now = self._clock()
        available = self._available(now)
        with self._engine.begin() as db:
            granted = db.execute(
                update(buckets)
                .where(buckets.c.source_id == self._source_id, buckets.c.blocked_until <= now, available >= 1)
                .values(tokens=available - 1, refilled_at=now)
            ).rowcount
            if granted:
                return 0.0
            tokens, blocked_until = db.execute(
                select(available, buckets.c.blocked_until).where(buckets.c.source_id == self._source_id)
            ).one()
        # An estimate (others take tokens meanwhile): the caller asks again after it.
        return max(float(blocked_until) - now, (1 - float(tokens)) / self._rate, 0.001)

    def _hold_off(self, seconds: float) -> None:
        self._make_row()
        until = self._clock() + seconds
        later = case((buckets.c.blocked_until < until, literal(until)), else_=buckets.c.blocked_until)
        with self._engine.begin() as db:
            db.execute(update(buckets).where(buckets.c.source_id == self._source_id).values(blocked_until=later))

    def _available(self, now: float) -> ColumnElement[float]:
        """The row's tokens refilled up to ``now``, at most ``burst`` (CASE: SQLite and PostgreSQL spell min apart)."""
        refilled = buckets.c.tokens + (literal(now) - buckets.c.refilled_at) * self._rate
        return case((refilled > self._burst, literal(self._burst)), else_=refilled)

    def _make_row(self) -> None:
        if self._row_made:
            return
        row = {"source_id": self._source_id, "tokens": self._burst, "refilled_at": self._clock(), "blocked_until": 0.0}
        with self._engine.begin() as db:
            db.execute(insert_into(self._engine, buckets).values(row).on_conflict_do_nothing())
        self._row_made = True


def share_rates(database_url: str, throttles: Iterable[SourceThrottle]) -> None:
    """Make the per-second budget of each throttle whose limits say ``shared`` the deployment's (one engine for all
    of them, opened only if there are any)."""
    chosen = [t for t in throttles if t.limits.shared and not isinstance(t.rate, SharedRate)]
    if not chosen:
        return
    engine = open_database(database_url)
    for throttle in chosen:
        throttle.share(SharedRate(engine, throttle.source_id, throttle.limits))
