"""Deadlines that drive timers and quality measures (HEDIS FUH/FUI follow-up windows)."""

from __future__ import annotations

from datetime import date, timedelta

STEP_DOWN_SETTINGS = frozenset({"inpatient", "php", "residential"})
MAX_DAYS_SINCE_DISCHARGE = 30


def first_session_deadline(discharge_date: date, days: int) -> date:
    """The last day the first IOP session still counts (7 days after hospital discharge by default)."""
    return discharge_date + timedelta(days=days)


def follow_up_status(discharge_date: date, first_attended: date | None) -> tuple[bool, bool]:
    """(within 7 days, within 30 days): a visit on the discharge day itself does not count."""
    if first_attended is None or first_attended <= discharge_date:
        return False, False
    days = (first_attended - discharge_date).days
    return days <= 7, days <= 30


def step_down_ineligibility(from_setting: str | None, discharge_date: date | None, today: date) -> list[str]:
    """Why this is not a step-down referral the program can take as is (empty: eligible). ``from_setting`` is
    None when the referral references no hospital discharge."""
    if from_setting is None:
        return ["no hospital discharge is referenced"]
    reasons = []
    if from_setting not in STEP_DOWN_SETTINGS:
        reasons.append(f"steps down from {from_setting}, not inpatient, PHP or residential care")
    if discharge_date is None:
        reasons.append("the hospital discharge date is unknown")
    elif (today - discharge_date).days > MAX_DAYS_SINCE_DISCHARGE:
        reasons.append(f"discharged more than {MAX_DAYS_SINCE_DISCHARGE} days ago")
    return reasons
