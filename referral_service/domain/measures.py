"""Quality measures computed from referrals' workflow state, for a period of hospital discharge dates.

Follow-up after hospitalization uses the HEDIS FUH/FUI windows: an attended session 1-7 (and 1-30) days after
the hospital discharge counts; one on the discharge day itself does not (a later one in the window still does).
A referral whose window is still open and has no qualifying session yet is *pending*: left out of that rate's
denominator until the window closes, so a fresh discharge does not read as a miss.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta

from pydantic import Field

from referral_service.domain.attendance import SessionRecord, weeks_meeting_minimum
from referral_service.domain.discharge import Discharge, DischargeReason
from referral_service.domain.referral import Frozen

FOLLOW_UP_WINDOWS = (7, 30)
DROP_OUT_REASONS = frozenset({DischargeReason.DROPPED_OUT, DischargeReason.LEFT_AGAINST_ADVICE})


class FollowUpResult(Frozen):
    """An aftercare checkpoint: when it was due and whether the patient was reached (None: no result yet)."""

    due: date
    reached: bool | None = None


class MeasuredReferral(Frozen):
    """One accepted referral as its snapshot tells it: codes, dates and attendance, no patient data."""

    track_id: str
    source_id: str
    hospital_discharge: date
    min_weekly_hours: float
    sessions: list[SessionRecord] = Field(default_factory=list)
    discharge: Discharge | None = None
    follow_ups: list[FollowUpResult] = Field(default_factory=list)

    def facts(self) -> MeasureFacts:
        met, weeks = weeks_meeting_minimum(self.sessions, self.min_weekly_hours)
        attended = [s.date for s in self.sessions if s.attended]
        return MeasureFacts(
            track_id=self.track_id,
            source_id=self.source_id,
            hospital_discharge=self.hospital_discharge,
            first_qualifying_visit=first_qualifying_visit(self),
            first_attended=min(attended) if attended else None,
            weeks_met=met,
            weeks=weeks,
            discharge_reason=self.discharge.reason if self.discharge else None,
            follow_ups=self.follow_ups,
        )


class MeasureFacts(Frozen):
    """All the measures read from one referral, small enough to keep on its read-model row."""

    track_id: str
    source_id: str
    hospital_discharge: date
    first_qualifying_visit: date | None = None
    first_attended: date | None = None
    weeks_met: int = 0
    weeks: int = 0  # weeks of treatment so far, the denominator of weeks meeting the track's minimum
    discharge_reason: DischargeReason | None = None
    follow_ups: list[FollowUpResult] = Field(default_factory=list)


class Rate(Frozen):
    """``numerator`` of ``denominator``; ``rate`` is None ("no data") when nothing is in the denominator.
    ``pending`` counts cases not yet decidable (a window still open), left out of the denominator."""

    numerator: int
    denominator: int
    pending: int = 0
    rate: float | None

    @classmethod
    def of(cls, numerator: int, denominator: int, pending: int = 0) -> Rate:
        rate = round(numerator / denominator, 4) if denominator else None
        return cls(numerator=numerator, denominator=denominator, pending=pending, rate=rate)


class GroupMeasures(Frozen):
    """The measures over one group of accepted referrals (a track, a referring source, or all of them)."""

    group: str
    referrals: int
    follow_up_7_days: Rate
    follow_up_30_days: Rate
    median_days_to_first_session: float | None
    first_sessions: int  # referrals with an attended session: the median's denominator
    weeks_meeting_minimum: Rate
    completed: Rate
    dropped_out: Rate  # dropped out or left against advice, of program discharges
    follow_ups_reached: Rate


class MeasuresReport(Frozen):
    period_from: date
    period_to: date
    as_of: date
    overall: GroupMeasures
    by_track: list[GroupMeasures]
    by_source: list[GroupMeasures]


def first_qualifying_visit(referral: MeasuredReferral) -> date | None:
    """The first attended session after the discharge day (HEDIS: the discharge day itself does not count)."""
    days = [s.date for s in referral.sessions if s.attended and s.date > referral.hospital_discharge]
    return min(days) if days else None


def follow_up_rate(referrals: Sequence[MeasureFacts], window_days: int, as_of: date) -> Rate:
    """Share with a qualifying visit within ``window_days`` after discharge; open windows without one pend."""
    hits = pending = 0
    for referral in referrals:
        visit = referral.first_qualifying_visit
        if visit is not None and (visit - referral.hospital_discharge).days <= window_days:
            hits += 1
        elif as_of <= referral.hospital_discharge + timedelta(days=window_days):
            pending += 1
    return Rate.of(hits, len(referrals) - pending, pending)


def days_to_first_session(referral: MeasureFacts) -> int | None:
    first = referral.first_attended
    return (first - referral.hospital_discharge).days if first is not None else None


def group_measures(group: str, referrals: Sequence[MeasureFacts], as_of: date) -> GroupMeasures:
    days = [d for d in map(days_to_first_session, referrals) if d is not None]
    met = sum(r.weeks_met for r in referrals)
    weeks = sum(r.weeks for r in referrals)
    reasons = [r.discharge_reason for r in referrals if r.discharge_reason is not None]
    return GroupMeasures(
        group=group,
        referrals=len(referrals),
        follow_up_7_days=follow_up_rate(referrals, 7, as_of),
        follow_up_30_days=follow_up_rate(referrals, 30, as_of),
        median_days_to_first_session=float(statistics.median(days)) if days else None,
        first_sessions=len(days),
        weeks_meeting_minimum=Rate.of(met, weeks),
        completed=Rate.of(sum(1 for r in reasons if r == DischargeReason.COMPLETED), len(reasons)),
        dropped_out=Rate.of(sum(1 for r in reasons if r in DROP_OUT_REASONS), len(reasons)),
        follow_ups_reached=follow_ups_reached(referrals, as_of),
    )


def follow_ups_reached(referrals: Iterable[MeasureFacts], as_of: date) -> Rate:
    """Aftercare checkpoints reached, of those with a result or past their due day (a missed one counts)."""
    reached = decided = pending = 0
    for follow_up in (f for r in referrals for f in r.follow_ups):
        if follow_up.reached is None and follow_up.due >= as_of:
            pending += 1
            continue
        decided += 1
        reached += follow_up.reached is True
    return Rate.of(reached, decided, pending)


def compute_measures(
    referrals: Iterable[MeasureFacts],
    *,
    period_from: date,
    period_to: date,
    as_of: date,
    tracks: Sequence[str] = (),
    sources: Sequence[str] = (),
) -> MeasuresReport:
    """The measures for referrals whose hospital discharge falls in ``[period_from, period_to]``.

    ``tracks`` and ``sources`` name groups to show even when empty (as "no data"), in that order; groups seen
    in the data but not named follow, sorted."""
    if period_from > period_to:
        raise ValueError("the period must not end before it starts")
    in_period = [r for r in referrals if period_from <= r.hospital_discharge <= period_to]
    return MeasuresReport(
        period_from=period_from,
        period_to=period_to,
        as_of=as_of,
        overall=group_measures("all", in_period, as_of),
        by_track=_by(in_period, lambda r: r.track_id, tracks, as_of),
        by_source=_by(in_period, lambda r: r.source_id, sources, as_of),
    )


def _by(
    referrals: list[MeasureFacts], key: Callable[[MeasureFacts], str], named: Sequence[str], as_of: date
) -> list[GroupMeasures]:
    groups = list(dict.fromkeys(named)) + sorted({key(r) for r in referrals} - set(named))
    return [group_measures(group, [r for r in referrals if key(r) == group], as_of) for group in groups]
