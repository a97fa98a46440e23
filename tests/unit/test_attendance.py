"""The attendance rules: the absence streak behind at-risk, and weekly hours against a track's minimum."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from referral_service.domain.attendance import (
    AttendanceStatus,
    SessionRecord,
    attendance_flags,
    consecutive_absences,
    weekly_hours,
    weeks_meeting_minimum,
)
from referral_service.domain.program import Program, SessionKind

MONDAY = date(2026, 11, 23)


def _session(day: int, status: AttendanceStatus = "attended", minutes: int = 180) -> SessionRecord:
    return SessionRecord(
        session_id=f"s{day}",
        date=MONDAY + timedelta(days=day),
        kind=SessionKind.GROUP,
        minutes=minutes,
        **attendance_flags(status),
    )


def test_excused_misses_neither_add_to_nor_break_an_absence_streak() -> None:
    assert consecutive_absences([_session(0), _session(1, "absent"), _session(2, "excused")]) == 1
    assert consecutive_absences([_session(0, "absent"), _session(1, "excused"), _session(2, "absent")]) == 2
    assert consecutive_absences([_session(0, "absent"), _session(1, "late")]) == 0


def test_late_is_attended_and_excused_is_missed() -> None:
    with pytest.raises(ValidationError, match="late arrival"):
        SessionRecord(session_id="x", date=MONDAY, kind=SessionKind.GROUP, minutes=60, attended=False, late=True)
    with pytest.raises(ValidationError, match="missed session"):
        SessionRecord(session_id="x", date=MONDAY, kind=SessionKind.GROUP, minutes=60, attended=True, excused=True)


def test_adolescent_track_is_held_to_its_six_hour_week(program: Program) -> None:
    """ASAM 2.1 adolescent minimum: 6 h a week. Two 3 h sessions meet it; 5 h 59 min does not."""
    minimum = program.track("adolescent").min_weekly_hours
    assert minimum == 6
    meets = [_session(0), _session(1)]  # week 1: 6 h exactly
    short = [_session(7), _session(8, minutes=179), _session(9, "absent")]  # week 2: 5 h 59 min
    assert list(weekly_hours(meets + short).values()) == [6.0, pytest.approx(5.983, abs=0.001)]
    assert weeks_meeting_minimum(meets + short, minimum) == (1, 2)
