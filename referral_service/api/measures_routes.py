"""``GET /api/measures``: the quality measures for a period of hospital discharge dates, from workflow state.

Cost: the hospital discharge date lives only in each referral's snapshot (it is no search attribute), so a
request lists every referral that was ever accepted (one visibility query, paged by the server) and queries
each one's snapshot, ``SNAPSHOT_CONCURRENCY`` at a time, whatever the period. A query on a closed referral
makes a worker replay its history first. A referral whose snapshot no worker returns within the query
timeout is left out and counted in ``unreadable``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from referral_service.api.deps import AppState, StateDep
from referral_service.api.referral_routes import find_referrals, read_snapshots
from referral_service.domain.lifecycle import Phase
from referral_service.domain.measures import MeasuresReport, compute_measures
from workflows.referral_row import measured_referral

router = APIRouter(prefix="/api/measures", tags=["measures"])
DEFAULT_PERIOD_DAYS = 90
SCAN_LIMIT = 5000
# Phases a referral can be in once accepted onto a track (cancelled ones may or may not have been).
ACCEPTED_PHASES = (
    Phase.ACCEPTED,
    Phase.INTAKE_SCHEDULED,
    Phase.IN_TREATMENT,
    Phase.DISCHARGED,
    Phase.AFTERCARE,
    Phase.CLOSED,
    Phase.TRANSFERRED,
    Phase.CANCELLED,
)


class MeasuresResponse(MeasuresReport):
    """The report, and how much of the caseload it could read."""

    referrals_scanned: int  # referrals past screening, whatever their discharge date
    unreadable: int  # of those, snapshots that could not be read: left out of every measure
    scan_limit_reached: bool  # more referrals than SCAN_LIMIT: the oldest were not read


@router.get("")
async def get_measures(
    services: StateDep,
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
    return await measure(services, start, end)


def default_period(period_from: date | None, period_to: date | None) -> tuple[date, date]:
    end = period_to or datetime.now(UTC).date()
    back = min(DEFAULT_PERIOD_DAYS - 1, (end - date.min).days)  # never before year 1
    return period_from or end - timedelta(days=back), end


async def measure(services: AppState, period_from: date, period_to: date) -> MeasuresResponse:
    """Read every accepted referral's snapshot (bounded concurrency) and compute the report."""
    rows = await find_referrals(services, phases=[p.value for p in ACCEPTED_PHASES], limit=SCAN_LIMIT)
    snapshots = await read_snapshots(services, (row.key for row in rows))
    measured = [m.facts() for s in snapshots.values() if s is not None and (m := measured_referral(s)) is not None]
    report = compute_measures(
        measured,
        period_from=period_from,
        period_to=period_to,
        as_of=datetime.now(UTC).date(),
        tracks=[track.id for track in services.program.tracks],
        sources=[source.id for source in services.settings.sources],
    )
    return MeasuresResponse(
        **dict(report),
        referrals_scanned=len(snapshots),
        unreadable=sum(1 for s in snapshots.values() if s is None),
        scan_limit_reached=len(rows) >= SCAN_LIMIT,
    )
