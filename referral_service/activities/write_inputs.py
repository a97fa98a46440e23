"""What each write-back activity takes: the referral, its business key, the program's organization and what the
resource is made of. Kept apart from the activities, for the workflow that builds them and the refusals that keep
them to send again."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator

from referral_service.domain.assessment import AssessmentRecord
from referral_service.domain.attendance import SessionRecord
from referral_service.domain.careteam import CareTeamAssignment
from referral_service.domain.ehr_writes import EhrWrite
from referral_service.domain.program import Program, Track
from referral_service.domain.referral import Referral, ResourceRef


class WriteInput(BaseModel):
    """What every write takes: its business key, the referral, and the program's organization (the owner,
    requester or managing organization of what is written), not the whole program: the history keeps each
    activity's input, and the program was its largest part."""

    key: str
    referral: Referral
    organization: ResourceRef

    @model_validator(mode="before")
    @classmethod
    def _from_a_whole_program(cls, given: Any) -> Any:
        """An activity scheduled before inputs were slimmed carries the whole program: take what it needs."""
        if not isinstance(given, dict) or "program" not in given:
            return given
        program = Program.model_validate(given["program"])
        taken = {name: value for name, value in given.items() if name != "program"}
        taken.setdefault("organization", program.organization)
        return taken


class WriteTaskInput(WriteInput):
    status: str
    business_status: str
    reason: str | None = None
    outputs: list[EhrWrite] = Field(default_factory=list)
    authored_on: datetime
    # When the workflow made the change, on its clock (a local activity's own clock is the worker's). None in an
    # input scheduled before this field: the attempt's scheduled time, as then.
    modified_at: datetime | None = None


class WriteCareTeamInput(WriteInput):
    team: CareTeamAssignment
    active: bool
    start: date


class WriteCarePlanInput(WriteInput):
    track_id: str
    track: Track | None = None  # the treatment plan's track (its goals and schedule); None for the aftercare plan
    status: str
    start: date
    end: date | None = None  # None: the planned end (program length, or the last follow-up)
    care_team: EhrWrite | None = None
    team: CareTeamAssignment | None = None  # its members are the treatment plan's contributors
    follow_up_days: list[int] = Field(default_factory=list)
    assessments: list[EhrWrite] = Field(default_factory=list)  # Observations the treatment plan lists

    @model_validator(mode="before")
    @classmethod
    def _track_from_a_whole_program(cls, given: Any) -> Any:
        """A treatment plan scheduled before inputs were slimmed finds its track in the whole program (this runs
        before ``WriteInput``'s validator, which takes the program away)."""
        if not isinstance(given, dict) or "program" not in given or "track" in given:
            return given
        if given.get("follow_up_days") or not given.get("track_id"):
            return given  # the aftercare plan: no track
        program = Program.model_validate(given["program"])
        return {**given, "track": program.track(str(given["track_id"]))}


class WriteEncounterInput(WriteInput):
    session: SessionRecord


class WriteObservationInput(WriteInput):
    assessment: AssessmentRecord


class WriteOutreachInput(WriteInput):
    missed: int
    authored_on: datetime


# Each write-back activity's input type, by activity name: what a refused write needs to be sent again.
WRITE_INPUTS: dict[str, type[WriteInput]] = {
    "write_task": WriteTaskInput,
    "write_care_team": WriteCareTeamInput,
    "write_care_plan": WriteCarePlanInput,
    "write_encounter": WriteEncounterInput,
    "write_observation": WriteObservationInput,
    "write_outreach_task": WriteOutreachInput,
}


class WriteAcceptanceInput(BaseModel):
    """The acceptance's three writes, for an EHR that takes them as one transaction."""

    team: WriteCareTeamInput
    plan: WriteCarePlanInput
    task: WriteTaskInput


class AcceptanceWrites(BaseModel):
    """What the EHR did with the acceptance's transaction: ``taken`` with each resource it wrote, or not taken
    (it offers no transaction, or refused this one for good), to be written resource by resource."""

    taken: bool
    writes: list[EhrWrite] = Field(default_factory=list)
