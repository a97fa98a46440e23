"""Inputs, outputs and state of ``ReferralWorkflow``: one typed input per workflow call and update."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from referral_service.activities.writeback import TASK_OUTPUT_TYPES
from referral_service.domain.assessment import AssessmentRecord
from referral_service.domain.attendance import SessionRecord
from referral_service.domain.careteam import CareTeamAssignment
from referral_service.domain.discharge import DeclineReason, Discharge
from referral_service.domain.ehr_writes import EhrWrite, Refusal
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import Program, StaffRole
from referral_service.domain.referral import Referral
from referral_service.domain.referrer_task import Cancellation, ReferrerTask, referrer_task

# What the API's description says of ``caseloads`` in a decision or a reassignment.
_IGNORED_FROM_CALLERS: dict[str, Any] = {
    "deprecated": True,
    "description": "Deprecated and ignored: the service counts open referrals per staff member itself.",
}
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


class RefusedWrite(Refusal):
    """A write the EHR refused for good: what it said (codes and PHI-free descriptions), and what it takes to send
    it again. Later writes under the same key replace it (the newest version is the one to send) or, when the EHR
    takes one, resolve it."""

    key: str
    at: datetime
    activity: str  # the write-back activity's name
    # The activity's input without the referral and what it takes from the program (the state holds both).
    request: dict[str, Any]
    fallback: EhrWrite | None = None  # the DocumentReference note written instead (CarePlan, Encounter)
    fallback_refusal: Refusal | None = None  # the note was refused too


class RetryWritesResult(BaseModel):
    """What ``retry_writes`` achieved: the writes the EHR took this time, and those it refused again."""

    succeeded: list[EhrWrite]
    still_refused: list[RefusedWrite]


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
    # Writes the EHR refused for good, by write key: shown, flagged (search attribute) and retryable.
    refused: dict[str, RefusedWrite] = Field(default_factory=dict)
    cancellation: Cancellation | None = None  # recorded when the workflow applies the referrer's cancellation
    timeline: list[TimelineEntry] = Field(default_factory=list)
    # Open referrals (workflow ids) whose patient matched this one's at intake: for the coordinator to check.
    possible_duplicates: list[str] = Field(default_factory=list)

    def referrer_task(self) -> ReferrerTask:
        """What the referrer's Task says now (the one function every writer and reader of it uses)."""
        return referrer_task(
            self.phase,
            decline_reason=str(self.decline_reason) if self.decline_reason else None,
            cancellation=self.cancellation,
            discharge_reason=self.discharge.reason if self.discharge else None,
            attended=any(session.attended for session in self.sessions),
        )

    def task_outputs(self) -> list[EhrWrite]:
        """What the Task lists as the program's outputs: the plans and sessions in the EHR."""
        return [write for write in self.writes.values() if write.resource_type in TASK_OUTPUT_TYPES]


class UpdateAnswer(BaseModel):
    """What an update answers: where the referral stands once it is applied. The whole state stays the
    ``snapshot`` query's, because an update's answer is kept in the history and a query's is not. The fields are
    ``ReferralState``'s, so a whole state (a worker from before this answer) reads as one too."""

    model_config = ConfigDict(extra="ignore")

    key: str
    phase: Phase
    at_risk: bool
    next_deadline: datetime | None = None

    @classmethod
    def of(cls, state: ReferralState) -> UpdateAnswer:
        return cls(key=state.key, phase=state.phase, at_risk=state.at_risk, next_deadline=state.next_deadline)


class StartReferralInput(BaseModel):
    """Start a referral; ``resume`` is set only when the workflow continues as new."""

    key: str
    referral: Referral
    program: Program
    received_at: datetime
    resume: ReferralState | None = None
    # Set by starts from before the duplicate-patient check ran beside the start (since, a signal brings them).
    possible_duplicates: list[str] = Field(default_factory=list)


class ScreeningDecisionInput(BaseModel):
    """Intake coordinator's decision: accept (track, intake time), decline (coded reason) or waitlist."""

    decision: str = Field(pattern="^(accept|decline|waitlist)$")
    track_id: str | None = None
    intake_at: datetime | None = None
    decline_reason: DeclineReason | None = None
    # Open referrals per staff id, so team assignment is least-loaded first and stays deterministic. The API fills
    # it from the read model (a caller's value is ignored); the field stays so recorded histories replay.
    caseloads: dict[str, int] = Field(default_factory=dict, json_schema_extra=_IGNORED_FROM_CALLERS)


class ReassignTeamInput(BaseModel):
    """Give one or more roles of the care team to named roster members (staff ids)."""

    members: dict[StaffRole, Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", max_length=64)]] = Field(
        min_length=1, max_length=len(StaffRole)
    )
    # Open referrals per staff id, as in a screening decision: a member at their caseload limit is refused.
    caseloads: dict[str, int] = Field(default_factory=dict, json_schema_extra=_IGNORED_FROM_CALLERS)


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
