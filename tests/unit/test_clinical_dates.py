"""The clinical date rules: no session, assessment or discharge where no such event can be, "today" being the
program's day in its own time zone; every refusal names its rule."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from referral_service.domain.attendance import AttendanceStatus, SessionRecord, attendance_flags
from referral_service.domain.clinical_dates import (
    DateRule,
    assessment_breach,
    discharge_breach,
    session_breach,
)
from referral_service.domain.program import Program, SessionKind
from referral_service.domain.program_day import Today
from referral_service.programs import DEFAULT_PROGRAM_FILE

NEW_YORK = "America/New_York"
TODAY = Today(date(2026, 12, 2), NEW_YORK)
TOMORROW = TODAY.day + timedelta(days=1)
YESTERDAY = TODAY.day - timedelta(days=1)


def _session(day: date, status: AttendanceStatus = "attended") -> SessionRecord:
    return SessionRecord(
        session_id=f"s-{day.isoformat()}", date=day, kind=SessionKind.GROUP, minutes=180, **attendance_flags(status)
    )


# ---- today, in the program's zone ----------------------------------------------------------------------


def test_half_past_eleven_in_new_york_is_still_today_there_while_utc_is_tomorrow() -> None:
    evening = datetime(2026, 12, 3, 4, 30, tzinfo=UTC)  # 23:30 on 2 December in New York (EST, UTC-5)
    assert evening.date() == date(2026, 12, 3)
    today = Today.at(evening, NEW_YORK)
    assert today == TODAY
    assert session_breach(_session(date(2026, 12, 2)), today=today) is None
    breach = session_breach(_session(date(2026, 12, 3)), today=today)
    assert breach is not None
    assert breach.rule == DateRule.SESSION_IN_FUTURE
    assert "(2026-12-02, America/New_York)" in str(breach)


def test_a_zone_east_of_utc_reaches_tomorrow_first() -> None:
    """At 23:30 UTC it is already the next day in Auckland: a session dated then is today's there."""
    late_utc = datetime(2026, 12, 2, 23, 30, tzinfo=UTC)
    assert Today.at(late_utc, "Pacific/Auckland").day == date(2026, 12, 3)
    assert session_breach(_session(date(2026, 12, 3)), today=Today.at(late_utc, "Pacific/Auckland")) is None
    assert session_breach(_session(date(2026, 12, 3)), today=Today.at(late_utc, "UTC")) is not None


def test_the_program_file_names_its_zone_and_a_program_without_one_counts_days_in_new_york() -> None:
    assert tomllib.loads(DEFAULT_PROGRAM_FILE.read_text())["time_zone"] == NEW_YORK
    shipped = Program.model_validate(tomllib.loads(DEFAULT_PROGRAM_FILE.read_text()))
    unnamed = {key: value for key, value in shipped.model_dump().items() if key != "time_zone"}
    assert Program.model_validate(unnamed).time_zone == NEW_YORK


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "../../etc/passwd", "EST5EDT-nonsense"])
def test_a_program_with_an_unknown_zone_is_refused_at_load(name: str) -> None:
    shipped = tomllib.loads(DEFAULT_PROGRAM_FILE.read_text())
    with pytest.raises(ValidationError, match="is not an IANA time zone name") as refused:
        Program.model_validate({**shipped, "time_zone": name})
    assert [error["loc"] for error in refused.value.errors()] == [("time_zone",)]


# ---- sessions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "wording"),
    [
        ("attended", "an attended session"),
        ("late", "a late arrival"),
        ("excused", "an excused absence"),
        ("absent", "an absence"),  # nobody can miss a session that has not happened
    ],
)
def test_no_session_of_any_kind_is_dated_after_today(status: AttendanceStatus, wording: str) -> None:
    assert session_breach(_session(TODAY.day, status), today=TODAY) is None
    breach = session_breach(_session(TOMORROW, status), today=TODAY)
    assert breach is not None
    assert str(breach) == (
        f"session-in-future: {wording} cannot be dated after today (2026-12-02, America/New_York):"
        " 2026-12-03 has not come yet"
    )


def test_a_session_before_the_hospital_discharge_is_refused() -> None:
    left_hospital = YESTERDAY
    assert session_breach(_session(YESTERDAY), today=TODAY, hospital_discharge=left_hospital) is None
    breach = session_breach(_session(YESTERDAY - timedelta(days=1)), today=TODAY, hospital_discharge=left_hospital)
    assert breach is not None
    assert breach.rule == DateRule.SESSION_BEFORE_HOSPITAL_DISCHARGE
    assert str(breach).startswith("session-before-hospital-discharge: a session on 2026-11-30 ")


@pytest.mark.parametrize("status", ["attended", "absent"])
def test_a_session_after_the_program_discharge_is_refused(status: AttendanceStatus) -> None:
    discharged = YESTERDAY
    assert session_breach(_session(discharged, status), today=TODAY, program_discharge=discharged) is None
    breach = session_breach(_session(TODAY.day, status), today=TODAY, program_discharge=discharged)
    assert breach is not None
    assert str(breach) == (
        "session-after-discharge: a session on 2026-12-02 cannot be after the program discharge (2026-12-01)"
    )


# ---- discharge ---------------------------------------------------------------------------------------


def test_a_discharge_today_after_the_sessions_is_taken() -> None:
    sessions = [_session(YESTERDAY - timedelta(days=2)), _session(YESTERDAY)]
    assert (
        discharge_breach(TODAY.day, today=TODAY, treatment_start=YESTERDAY - timedelta(days=5), sessions=sessions)
        is None
    )
    assert discharge_breach(YESTERDAY, today=TODAY, treatment_start=YESTERDAY, sessions=sessions) is None


def test_a_discharge_after_today_is_refused() -> None:
    breach = discharge_breach(TODAY.day + timedelta(days=10), today=TODAY, treatment_start=None, sessions=[])
    assert breach is not None
    assert str(breach) == (
        "discharge-in-future: a discharge cannot be dated after today (2026-12-02, America/New_York):"
        " 2026-12-12 has not come yet"
    )


def test_a_discharge_before_acceptance_is_refused() -> None:
    breach = discharge_breach(YESTERDAY, today=TODAY, treatment_start=TODAY.day, sessions=[])
    assert breach is not None
    assert str(breach) == (
        "discharge-before-acceptance: the discharge date 2026-12-01 is before the program started (2026-12-02)"
    )


def test_a_discharge_before_the_first_attended_session_is_refused() -> None:
    """Missed sessions before it do not count: the first attended one does."""
    start = TODAY.day - timedelta(days=10)
    sessions = [_session(start + timedelta(days=1), "absent"), _session(start + timedelta(days=5))]
    breach = discharge_breach(start + timedelta(days=3), today=TODAY, treatment_start=start, sessions=sessions)
    assert breach is not None
    assert str(breach) == (
        "discharge-before-first-session: the discharge date 2026-11-25 is before the first attended session"
        " (2026-11-27)"
    )
    # Never attended: a drop-out is discharged whenever the program decides.
    assert (
        discharge_breach(start + timedelta(days=3), today=TODAY, treatment_start=start, sessions=sessions[:1]) is None
    )


def test_a_discharge_before_a_later_attended_session_is_refused_but_later_absences_stand() -> None:
    start = TODAY.day - timedelta(days=10)
    attended = [_session(start + timedelta(days=1)), _session(start + timedelta(days=6))]
    breach = discharge_breach(start + timedelta(days=3), today=TODAY, treatment_start=start, sessions=attended)
    assert breach is not None
    assert str(breach) == (
        "session-after-discharge: the discharge date 2026-11-25 is before an attended session (2026-11-28)"
    )
    # A drop-out discharged as of the last day of service, with the absences after it already recorded.
    dropped = [attended[0], _session(start + timedelta(days=6), "absent")]
    assert discharge_breach(start + timedelta(days=1), today=TODAY, treatment_start=start, sessions=dropped) is None


# ---- assessments -------------------------------------------------------------------------------------


def test_an_assessment_after_today_is_refused() -> None:
    assert assessment_breach(TODAY.day, today=TODAY) is None
    breach = assessment_breach(TOMORROW, today=TODAY)
    assert breach is not None
    assert breach.rule == DateRule.ASSESSMENT_IN_FUTURE
    assert str(breach).startswith("assessment-in-future: an assessment cannot be dated after today (2026-12-02, ")
