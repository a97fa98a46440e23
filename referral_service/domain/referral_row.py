"""A referral's row in the read model: what lists, boards, caseloads and measures read, without asking the
workflow (ARCHITECTURE.md, the service database). The workflow projects it from its state at every change.

``person`` is the only patient data on it; the store seals it before it reaches a table. ``version`` orders
a referral's rows: the workflow time of the change, then its history length (which grows within a run and
restarts at continue-as-new, when the time has moved on), so a retried or late write never goes backwards.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from referral_service.domain.measures import MeasureFacts
from referral_service.domain.referral import Frozen


class RowPerson(Frozen):
    """Whom the referral is for: shown to staff whose role may see it, stored sealed."""

    family: str | None = None
    given: list[str] = Field(default_factory=list)
    birth_date: date | None = None
    gender: str | None = None
    mrn: str | None = None
    phone: str | None = None


class RowVersion(Frozen):
    at: datetime
    event: int


class ReferralRow(Frozen):
    key: str
    version: RowVersion
    source_id: str
    phase: str
    ended: bool  # closed, declined, cancelled or transferred: off every open list
    track_id: str | None = None
    referrer: str | None = None  # who referred by name: the requester (and its organisation) the referral names
    received_at: datetime
    from_setting: str | None = None  # where the patient steps down from; None: no hospital discharge referenced
    hospital_discharge: date | None = None
    accepted_on: date | None = None
    first_attended: date | None = None
    program_discharge: date | None = None
    sessions_attended: int = 0
    hours_attended: float = 0
    absences: int = 0
    team: dict[str, str] = Field(default_factory=dict)  # role -> staff id
    next_deadline: datetime | None = None
    first_session_due: date | None = None
    next_follow_up: date | None = None  # in aftercare: the next follow-up call not yet made nor missed
    outreach_due: date | None = None  # the last missed session of a streak that asked for outreach
    at_risk: bool = False
    overdue: list[str] = Field(default_factory=list)
    refused_writes: int = 0
    possible_duplicates: list[str] = Field(default_factory=list)  # keys of open referrals for the same patient
    measures: MeasureFacts | None = None  # accepted onto a track with a hospital discharge date
    person: RowPerson
