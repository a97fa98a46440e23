"""Dates as the program counts them: today in its time zone, which the clinical date rules hold every
session, assessment and discharge to (nothing may be dated after it)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from referral_service.domain.program import Program
from referral_service.domain.program_day import Today, time_zone
from referral_service.programs import load_program

# The program every test API serves (the shipped example's zone, America/New_York).
PROGRAM = load_program()


def program_today(now: datetime | None = None, program: Program = PROGRAM) -> date:
    """The program's day at ``now`` (a test server's clock; default the wall clock)."""
    return Today.at(now or datetime.now(UTC), program.time_zone).day


def noon_of(day: date, program: Program = PROGRAM) -> datetime:
    """Midday of ``day`` in the program's zone: a moment safely inside that day there (and in UTC)."""
    return datetime.combine(day, time(12), time_zone(program.time_zone))
