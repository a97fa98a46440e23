"""The program's calendar: what day it is in the program's own time zone.

At 23:30 in New York an evening session is today's, although UTC has already moved on: the program's days,
not the server's or UTC's, decide what "today" and "in the future" mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError naming it when this machine's time zone database has no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: not even a zone's shape ("", "../x")
        raise ValueError(f"{name!r} is not an IANA time zone name (such as America/New_York)") from None


@dataclass(frozen=True)
class Today:
    """The program's calendar day, and the zone it was read in (a refusal names both)."""

    day: date
    zone: str

    @classmethod
    def at(cls, moment: datetime, zone: str) -> Today:
        """The day it is in ``zone`` at ``moment`` (an aware datetime: the workflow's clock, or the wall clock)."""
        return cls(moment.astimezone(time_zone(zone)).date(), zone)

    def __str__(self) -> str:
        return f"{self.day.isoformat()}, {self.zone}"
