"""Clinical date rules: the dates a session, an assessment or a program discharge cannot carry.

"Today" is the program's calendar day, in its own time zone (``program_day.Today``). Each rule has a stable
name, stated first in every refusal, so a case manager, the CLI and the tests can all tell which one a date broke.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from referral_service.domain.attendance import SessionRecord, first_attended
from referral_service.domain.program_day import Today


class DateRule(StrEnum):
    SESSION_IN_FUTURE = "session-in-future"
    SESSION_BEFORE_HOSPITAL_DISCHARGE = "session-before-hospital-discharge"
    SESSION_AFTER_DISCHARGE = "session-after-discharge"
    ASSESSMENT_IN_FUTURE = "assessment-in-future"
    DISCHARGE_IN_FUTURE = "discharge-in-future"
    DISCHARGE_BEFORE_ACCEPTANCE = "discharge-before-acceptance"
    DISCHARGE_BEFORE_FIRST_SESSION = "discharge-before-first-session"


@dataclass(frozen=True)
class Breach:
    """A date a rule refuses; reads as ``<rule>: <why>``."""

    rule: DateRule
    why: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.why}"


def session_breach(
    session: SessionRecord,
    *,
    today: Today,
    hospital_discharge: date | None = None,
    program_discharge: date | None = None,
) -> Breach | None:
    """Why ``session`` cannot carry its date, or None. Missed sessions too: nobody can be absent from a session
    that has not happened yet."""
    day = session.date
    if day > today.day:
        return Breach(
            DateRule.SESSION_IN_FUTURE,
            f"{_kind_of_record(session)} cannot be dated after today ({today}): {day.isoformat()} has not come yet",
        )
    if hospital_discharge is not None and day < hospital_discharge:
        return Breach(
            DateRule.SESSION_BEFORE_HOSPITAL_DISCHARGE,
            f"a session on {day.isoformat()} cannot be before the hospital discharge"
            f" ({hospital_discharge.isoformat()})",
        )
    if program_discharge is not None and day > program_discharge:
        return Breach(
            DateRule.SESSION_AFTER_DISCHARGE,
            f"a session on {day.isoformat()} cannot be after the program discharge ({program_discharge.isoformat()})",
        )
    return None


def _kind_of_record(session: SessionRecord) -> str:
    if session.late:
        return "a late arrival"
    if session.attended:
        return "an attended session"
    return "an excused absence" if session.excused else "an absence"


def assessment_breach(day: date, *, today: Today) -> Breach | None:
    """Why an assessment cannot carry ``day``, or None."""
    if day > today.day:
        return Breach(
            DateRule.ASSESSMENT_IN_FUTURE,
            f"an assessment cannot be dated after today ({today}): {day.isoformat()} has not come yet",
        )
    return None


def discharge_breach(
    day: date, *, today: Today, treatment_start: date | None, sessions: Iterable[SessionRecord]
) -> Breach | None:
    """Why a program discharge cannot carry ``day``, or None: it cannot lie ahead, precede the acceptance (the
    plan would end before it began) or precede an attended session. Absences recorded after it can stand: a
    drop-out is often discharged as of the last day of service."""
    if day > today.day:
        return Breach(
            DateRule.DISCHARGE_IN_FUTURE,
            f"a discharge cannot be dated after today ({today}): {day.isoformat()} has not come yet",
        )
    if treatment_start is not None and day < treatment_start:
        return Breach(
            DateRule.DISCHARGE_BEFORE_ACCEPTANCE,
            f"the discharge date {day.isoformat()} is before the program started ({treatment_start.isoformat()})",
        )
    recorded = list(sessions)
    first = first_attended(recorded)
    if first is not None and day < first:
        return Breach(
            DateRule.DISCHARGE_BEFORE_FIRST_SESSION,
            f"the discharge date {day.isoformat()} is before the first attended session ({first.isoformat()})",
        )
    later = [s.date for s in recorded if s.attended and s.date > day]
    if later:
        return Breach(
            DateRule.SESSION_AFTER_DISCHARGE,
            f"the discharge date {day.isoformat()} is before an attended session ({max(later).isoformat()})",
        )
    return None
