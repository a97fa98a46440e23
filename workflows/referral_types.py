"""Inputs, outputs and state of ``ReferralWorkflow``: one typed input per workflow call and update."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from referral_service.activities.writeback import EhrWrite
from referral_service.domain.assessment import AssessmentRecord
from referral_service.domain.attendance import SessionRecord
from referral_service.domain.careteam import CareTeamAssignment
from referral_service.domain.discharge import DeclineReason, Discharge
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import Program, StaffRole
from referral_service.domain.referral import Referral

FHIR_STRING = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*\S[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"


class TimelineEntry(BaseModel):
    at: datetime
    event: str
    detail: str = ""


class FollowUp(BaseModel):
    """An aftercare checkpoint (days after program discharge) and what came of it."""

    day: int
    due: date
    reached: bool | None = None
    note: str = ""


class ReferralState(BaseModel):
    """Everything the workflow knows; the ``snapshot`` query returns it and continue-as-new carries it."""

    key: str
    referral: Referral
    program: Program
    received_at: datetime
    phase: Phase = Phase.RECEIVED
    track_id: str | None = None
    decline_reason: DeclineReason | None = None
    intake_at: datetime | None = None
    treatment_start: date | None = None  # acceptance day: the start of the care team and the plan
    team: CareTeamAssignment | None = None
    # Every assignment in order, the current one last, each with the time it took effect.
    team_history: list[CareTeamAssignment] = Field(default_factory=list)
    sessions: list[SessionRecord] = Field(default_factory=list)
    # PHQ-9 / GAD-7 / AUDIT-C / C-SSRS scores in the order recorded (one per assessment_id); each is an
    # Observation in the EHR under the write key "<key>/observation/<assessment_id>".
    assessments: list[AssessmentRecord] = Field(default_factory=list)
    discharge: Discharge | None = None
    follow_ups: list[FollowUp] = Field(default_factory=list)
    task_status: str = "requested"
    at_risk: bool = False
    overdue: list[str] = Field(default_factory=list)
    next_deadline: datetime | None = None
    writes: dict[str, EhrWrite] = Field(default_factory=dict)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    # Open referrals (workflow ids) whose patient matched this one's at intake: for the coordinator to check.
    possible_duplicates: list[str] = Field(default_factory=list)


class StartReferralInput(BaseModel):
    """Start a referral; ``resume`` is set only when the workflow continues as new."""

    key: str
    referral: Referral
    program: Program
    received_at: datetime
    resume: ReferralState | None = None
    possible_duplicates: list[str] = Field(default_factory=list)


class ScreeningDecisionInput(BaseModel):
    """Intake coordinator's decision: accept (track, intake time), decline (coded reason) or waitlist."""

    decision: str = Field(pattern="^(accept|decline|waitlist)$")
    track_id: str | None = None
    intake_at: datetime | None = None
    decline_reason: DeclineReason | None = None
    # Open referrals per staff id, so team assignment is least-loaded first and stays deterministic.
    caseloads: dict[str, int] = Field(default_factory=dict)


class ReassignTeamInput(BaseModel):
    """Give one or more roles of the care team to named roster members (staff ids)."""

    members: dict[StaffRole, Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", max_length=64)]] = Field(
        min_length=1, max_length=len(StaffRole)
    )
    # Open referrals per staff id, as in a screening decision: a member at their caseload limit is refused.
    caseloads: dict[str, int] = Field(default_factory=dict)


class RecordSessionInput(BaseModel):
    session: SessionRecord


class RecordAssessmentInput(BaseModel):
    assessment: AssessmentRecord


class DischargeInput(BaseModel):
    discharge: Discharge


class FollowUpInput(BaseModel):
    day: int
    reached: bool
    note: str = ""


class CancelInput(BaseModel):
    """The referrer revoked the ServiceRequest (or asked to cancel)."""

    # Shown to the referrer as Task.statusReason: a FHIR string (no control characters), not a document.
    reason: str = Field(default="revoked by referrer", min_length=1, max_length=500, pattern=FHIR_STRING)
    # BSeR's handshake: the Task shows the request (businessStatus cancellation-requested) before the
    # confirmation; False for a revoked ServiceRequest or Gravity's direct cancellation.
    requested: bool = False
