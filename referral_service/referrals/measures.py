"""The quality measures for a period of hospital discharge dates, from the read model.

Each referral's workflow keeps the facts the measures need on its read-model row (``MeasureFacts``, written
whenever the referral changes), so a report is one indexed read of the rows discharged in the period and
no workflow is queried, however many referrals the program has seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from referral_service.domain.measures import MeasuresReport, compute_measures
from referral_service.domain.program import Program
from referral_service.store.referrals import ReferralRows

DEFAULT_PERIOD_DAYS = 90


class MeasuresResponse(MeasuresReport):
    """The report, and how much of the caseload it could read."""

    referrals_scanned: int  # read-model rows with measure facts and a hospital discharge in the period
    unreadable: int  # of those, facts that did not parse (written by another version): left out
    scan_limit_reached: bool  # always false now: the read model has no scan limit (kept for the answer's shape)


def default_period(period_from: date | None, period_to: date | None) -> tuple[date, date]:
    end = period_to or datetime.now(UTC).date()
    back = min(DEFAULT_PERIOD_DAYS - 1, (end - date.min).days)  # never before year 1
    return period_from or end - timedelta(days=back), end


async def measure(
    read_model: ReferralRows, program: Program, sources: Sequence[str], period_from: date, period_to: date
) -> MeasuresResponse:
    """The report over the read model's rows discharged in the period (no workflow is asked)."""
    read = await read_model.measure_facts(period_from, period_to)
    report = compute_measures(
        read.facts,
        period_from=period_from,
        period_to=period_to,
        as_of=datetime.now(UTC).date(),
        tracks=[track.id for track in program.tracks],
        sources=list(sources),
    )
    return MeasuresResponse(
        **dict(report),
        referrals_scanned=len(read.facts) + read.unreadable,
        unreadable=read.unreadable,
        scan_limit_reached=False,
    )
