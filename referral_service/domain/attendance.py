"""Sessions and attendance: weekly hours against the track minimum, and the absence rule."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, time
from typing import Literal

from pydantic import Field, model_validator

from referral_service.domain.program import SessionKind
from referral_service.domain.referral import Frozen


class SessionRecord(Frozen):
    session_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    date: date
    start_time: time = time(9, 0)
    kind: SessionKind
    minutes: int = Field(gt=0, le=600)
    attended: bool
    modality: Literal["in_person", "telehealth"] = "in_person"
    staff_id: str | None = None
    late: bool = False  # attended, but late
    excused: bool = False  # missed with an excuse: not an absence in the streak that puts a referral at risk

    @model_validator(mode="after")
    def _consistent(self) -> SessionRecord:
        if self.late and not self.attended:
            raise ValueError("a late arrival is an attended session")
        if self.excused and self.attended:
            raise ValueError("only a missed session can be excused")
        return self


AttendanceStatus = Literal["attended", "absent", "excused", "late"]


def attendance_flags(status: AttendanceStatus) -> dict[str, bool]:
    """``SessionRecord`` fields for a roster's attendance status."""
    return {"attended": status in ("attended", "late"), "late": status == "late", "excused": status == "excused"}


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def weekly_hours(sessions: Iterable[SessionRecord]) -> dict[str, float]:
    """Attended hours per ISO week, in week order."""
    hours: dict[str, float] = defaultdict(float)
    for session in sessions:
        if session.attended:
            hours[iso_week(session.date)] += session.minutes / 60
    return dict(sorted(hours.items()))


def weeks_meeting_minimum(sessions: Iterable[SessionRecord], minimum_hours: float) -> tuple[int, int]:
    """(weeks at or above the minimum, weeks with any attendance)."""
    hours = weekly_hours(sessions)
    return sum(1 for h in hours.values() if h >= minimum_hours), len(hours)


def absence_streak(sessions: Iterable[SessionRecord]) -> list[SessionRecord]:
    """Unexcused missed sessions since the last attended one, in session order (excused ones are skipped)."""
    streak: list[SessionRecord] = []
    for session in sorted(sessions, key=lambda s: (s.date, s.start_time)):
        if not session.excused:
            streak = [] if session.attended else [*streak, session]
    return streak


def consecutive_absences(sessions: Iterable[SessionRecord]) -> int:
    return len(absence_streak(sessions))


def is_at_risk(sessions: Iterable[SessionRecord], threshold: int) -> bool:
    return consecutive_absences(sessions) >= threshold


def first_attended(sessions: Iterable[SessionRecord]) -> date | None:
    days = [s.date for s in sessions if s.attended]
    return min(days) if days else None
