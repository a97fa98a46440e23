"""``GET /api/measures``: the quality measures for a period of hospital discharge dates (``referrals.measures``)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from referral_service.api.deps import ReadModelDep, StateDep
from referral_service.referrals.measures import DEFAULT_PERIOD_DAYS, MeasuresResponse, default_period, measure

router = APIRouter(prefix="/api/measures", tags=["measures"])


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
    return await measure(read_model, services.program, services.source_ids, start, end)
