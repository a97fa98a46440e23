"""``GET /api/measures``: the quality measures for a period of hospital discharge dates, from the read model.

Each referral's workflow keeps the facts the measures need on its read-model row (``MeasureFacts``, written
whenever the referral changes), so a request is one indexed read of the rows discharged in the period and
no workflow is queried, however many referrals the program has seen.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from referral_service.api.deps import AppState, ReadModelDep, StateDep
from referral_service.domain.measures import MeasuresReport, compute_measures
from referral_service.store.referrals import ReferralRows

router = APIRouter(prefix="/api/measures", tags=["measures"])
DEFAULT_PERIOD_DAYS = 90


class MeasuresResponse(MeasuresReport):
    """The report, and how much of the caseload it could read."""

    referrals_scanned: int  # read-model rows with measure facts and a hospital discharge in the period
    unreadable: int  # of those, facts that did not parse (written by another version): left out
    scan_limit_reached: bool  # always false now: the read model has no scan limit (kept for the answer's shape)


@router.get("")
async def get_measures(
    services: StateDep,
    read_model: ReadModelDep,
    period_from: Annotated[
        date | None,
        Query(alias="from", description=f"first hospital discharge day (default: to - {DEFAULT_PERIOD_DAYS - 1} days)"),
    ] = None,
    period_to: Annotated[
        date | None, Query(alias="to", description="last hospital discharge day (default: today, UTC)")
    ] = None,
) -> MeasuresResponse:
    """Follow-up within 7 and 30 days of hospital discharge (HEDIS FUH/FUI: the discharge day does not count),
    median days to the first session, weeks at the track's minimum hours, completion and drop-out, aftercare
    follow-ups reached; overall, by track and by referring source. Every rate carries its numerator and
    denominator; ``rate`` is null when the denominator is 0."""
    start, end = default_period(period_from, period_to)
    if start > end:
        raise HTTPException(422, detail="the period must not end before it starts (from <= to)")
    return await measure(services, read_model, start, end)


def default_period(period_from: date | None, period_to: date | None) -> tuple[date, date]:
    end = period_to or datetime.now(UTC).date()
    back = min(DEFAULT_PERIOD_DAYS - 1, (end - date.min).days)  # never before year 1
    return period_from or end - timedelta(days=back), end


async def measure(services: AppState, read_model: ReferralRows, period_from: date, period_to: date) -> MeasuresResponse:
    """The report over the read model's rows discharged in the period (no workflow is asked)."""
    read = await read_model.measure_facts(period_from, period_to)
    report = compute_measures(
        read.facts,
        period_from=period_from,
        period_to=period_to,
        as_of=datetime.now(UTC).date(),
        tracks=[track.id for track in services.program.tracks],
        sources=[source.id for source in services.settings.sources],
    )
    return MeasuresResponse(
        **dict(report),
        referrals_scanned=len(read.facts) + read.unreadable,
        unreadable=read.unreadable,
        scan_limit_reached=False,
    )
