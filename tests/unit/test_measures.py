"""Quality measures on hand-built referrals with known answers, including HEDIS's discharge-day edge case."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from referral_service.domain.attendance import SessionRecord
from referral_service.domain.discharge import Discharge, DischargeReason
from referral_service.domain.measures import (
    FollowUpResult,
    MeasuredReferral,
    MeasureFacts,
    Rate,
    compute_measures,
    follow_up_rate,
    follow_ups_reached,
    group_measures,
)
from referral_service.domain.program import SessionKind
from referral_service.referrals.measures import default_period

LEFT_HOSPITAL = date(2026, 3, 2)  # a Monday
LONG_AGO = date(2026, 9, 1)  # every window of a March discharge has closed


def visit(days_after: int, *, minutes: int = 180, attended: bool = True, n: int | None = None) -> SessionRecord:
    return SessionRecord(
        session_id=f"s{n if n is not None else days_after}",
        date=LEFT_HOSPITAL + timedelta(days=days_after),
        kind=SessionKind.GROUP,
        minutes=minutes,
        attended=attended,
    )


def referral(
    *sessions: SessionRecord,
    track: str = "adult-mh",
    source: str = "st-marys",
    discharged: date = LEFT_HOSPITAL,
    discharge: DischargeReason | None = None,
    follow_ups: tuple[FollowUpResult, ...] = (),
) -> MeasureFacts:
    """One accepted referral's measure facts, made as the read model makes them: from its snapshot's shape."""
    return MeasuredReferral(
        track_id=track,
        source_id=source,
        hospital_discharge=discharged,
        min_weekly_hours=9,
        sessions=list(sessions),
        discharge=Discharge(reason=discharge, date=discharged + timedelta(days=60)) if discharge else None,
        follow_ups=list(follow_ups),
    ).facts()


def test_a_visit_on_the_discharge_day_does_not_count_but_a_later_one_in_the_window_does():
    only_same_day = referral(visit(0))
    same_day_then_day_five = referral(visit(0), visit(5))

    assert only_same_day.first_qualifying_visit is None
    assert same_day_then_day_five.first_qualifying_visit == LEFT_HOSPITAL + timedelta(days=5)
    assert follow_up_rate([only_same_day], 7, LONG_AGO) == Rate.of(0, 1)
    assert follow_up_rate([same_day_then_day_five], 7, LONG_AGO) == Rate.of(1, 1)


@pytest.mark.parametrize(
    ("days_after", "within_7", "within_30"),
    [(1, 1, 1), (7, 1, 1), (8, 0, 1), (30, 0, 1), (31, 0, 0)],
)
def test_window_edges_are_inclusive_of_day_7_and_day_30(days_after, within_7, within_30):
    referrals = [referral(visit(days_after))]
    assert follow_up_rate(referrals, 7, LONG_AGO).numerator == within_7
    assert follow_up_rate(referrals, 30, LONG_AGO).numerator == within_30


def test_a_missed_session_is_no_follow_up():
    assert follow_up_rate([referral(visit(2, attended=False))], 7, LONG_AGO) == Rate.of(0, 1)


def test_an_open_window_without_a_visit_pends_instead_of_counting_as_a_miss():
    waiting = referral()  # discharged today, nothing attended yet
    seen = referral(visit(2))
    today = LEFT_HOSPITAL + timedelta(days=3)

    seven = follow_up_rate([waiting, seen], 7, today)
    assert (seven.numerator, seven.denominator, seven.pending, seven.rate) == (1, 1, 1, 1.0)
    on_day_7 = follow_up_rate([waiting], 7, LEFT_HOSPITAL + timedelta(days=7))
    assert on_day_7.pending == 1  # a session today would still count
    day_8 = follow_up_rate([waiting], 7, LEFT_HOSPITAL + timedelta(days=8))
    assert (day_8.denominator, day_8.pending, day_8.rate) == (1, 0, 0.0)
    assert follow_up_rate([waiting], 30, LEFT_HOSPITAL + timedelta(days=8)).pending == 1


def test_median_days_counts_the_first_attended_session_even_on_the_discharge_day():
    measures = group_measures(
        "adult-mh",
        [referral(visit(0), visit(4)), referral(visit(3)), referral(visit(1, attended=False), visit(10)), referral()],
        LONG_AGO,
    )
    assert measures.median_days_to_first_session == 3.0
    assert measures.first_sessions == 3
    assert group_measures("x", [referral(visit(2)), referral(visit(5))], LONG_AGO).median_days_to_first_session == 3.5


def test_weeks_meeting_the_minimum_use_the_tracks_weekly_hours():
    # Discharged on a Monday: 3 sessions x 3 h that week = 9 h (meets 9); the next week 3 h (short).
    three_then_one = referral(visit(1), visit(2), visit(3), visit(8))
    short_week = referral(visit(1, minutes=120))
    measures = group_measures("adult-mh", [three_then_one, short_week], LONG_AGO)
    assert measures.weeks_meeting_minimum == Rate.of(1, 3)


def test_completion_and_drop_out_are_shares_of_program_discharges():
    referrals = [
        referral(visit(1), discharge=DischargeReason.COMPLETED),
        referral(visit(1), discharge=DischargeReason.COMPLETED),
        referral(visit(1), discharge=DischargeReason.DROPPED_OUT),
        referral(visit(1), discharge=DischargeReason.LEFT_AGAINST_ADVICE),
        referral(visit(1), discharge=DischargeReason.TRANSFERRED),
        referral(visit(1)),  # still in treatment: in neither denominator
    ]
    measures = group_measures("adult-mh", referrals, LONG_AGO)
    assert measures.completed == Rate.of(2, 5)
    assert measures.dropped_out == Rate.of(2, 5)
    assert measures.referrals == 6


def test_follow_ups_reached_count_missed_past_due_ones_and_pend_the_rest():
    today = date(2026, 6, 1)
    follow_ups = (
        FollowUpResult(due=date(2026, 5, 1), reached=True),
        FollowUpResult(due=date(2026, 5, 20), reached=False),
        FollowUpResult(due=date(2026, 5, 25), reached=None),  # past due without a result: missed
        FollowUpResult(due=date(2026, 6, 1), reached=None),  # due today: not yet
        FollowUpResult(due=date(2026, 6, 20), reached=True),  # reached early: counts
    )
    rate = follow_ups_reached([referral(follow_ups=follow_ups)], today)
    assert (rate.numerator, rate.denominator, rate.pending) == (2, 4, 1)
    assert rate.rate == 0.5


def test_report_groups_by_track_and_source_within_the_period_and_empty_groups_have_no_data():
    in_period = [
        referral(visit(3), track="adult-mh", source="st-marys"),
        referral(visit(0), visit(12), track="adult-mh", source="st-marys"),
        referral(track="adult-mh", source="county"),
        referral(visit(8), track="sud", source="county", discharged=LEFT_HOSPITAL + timedelta(days=6)),  # 2 days on
    ]
    outside = [
        referral(visit(1), track="sud", discharged=LEFT_HOSPITAL - timedelta(days=1)),
        referral(visit(1), track="evening", discharged=LEFT_HOSPITAL + timedelta(days=7)),
    ]
    report = compute_measures(
        in_period + outside,
        period_from=LEFT_HOSPITAL,
        period_to=LEFT_HOSPITAL + timedelta(days=6),
        as_of=LONG_AGO,
        tracks=["adult-mh", "adolescent", "sud"],
        sources=["st-marys"],
    )

    assert report.overall.referrals == 4
    assert report.overall.follow_up_7_days == Rate.of(2, 4)
    assert report.overall.follow_up_30_days == Rate.of(3, 4)
    tracks = {g.group: g for g in report.by_track}
    assert list(tracks) == ["adult-mh", "adolescent", "sud"]  # evening only outside the period
    assert tracks["adult-mh"].follow_up_7_days == Rate.of(1, 3)
    assert tracks["adult-mh"].follow_up_30_days == Rate.of(2, 3)
    assert tracks["adult-mh"].median_days_to_first_session == 1.5  # days 3 and 0
    assert tracks["sud"].follow_up_7_days == Rate.of(1, 1)
    empty = tracks["adolescent"]
    assert empty.referrals == 0
    assert empty.follow_up_7_days.rate is None
    assert empty.median_days_to_first_session is None
    assert empty.completed.rate is None
    assert [g.group for g in report.by_source] == ["st-marys", "county"]
    assert report.by_source[1].follow_up_7_days == Rate.of(1, 2)


def test_a_period_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="must not end before it starts"):
        compute_measures([], period_from=LEFT_HOSPITAL, period_to=LEFT_HOSPITAL - timedelta(days=1), as_of=LONG_AGO)


def test_the_default_period_is_the_90_days_to_the_last_day_and_never_before_year_1():
    assert default_period(None, date(2026, 3, 31)) == (date(2026, 1, 1), date(2026, 3, 31))
    assert default_period(date(2026, 3, 2), date(2026, 3, 31)) == (date(2026, 3, 2), date(2026, 3, 31))
    assert default_period(None, date(1, 1, 5)) == (date.min, date(1, 1, 5))
