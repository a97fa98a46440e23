"""Write-back activities: shape a resource with ``fhir_mappings`` and upsert it in the referring EHR.

Each write is a conditional update on the resource's business identifier
(``PUT Type?identifier=<system>|<key>``), so a retried activity or a replayed workflow finds and updates
what an earlier try wrote instead of making a duplicate.

A CarePlan or Encounter the EHR does not accept (its CapabilityStatement, read once per source, or the
source's ``writable`` override) is written as a DocumentReference note instead, never dropped.

A write the EHR refuses for good (a 4xx a retry cannot change; a 409/412 conflict still there after
``CONFLICT_ATTEMPTS`` tries) fails the activity with a non-retryable ``REFUSED`` error whose details are a
``RefusalReport``: what the EHR said, without PHI, and the note written instead where one applies. The workflow
records it and goes on. A source's refusal of our credentials (401, or 403 where the source has ``auth``) is
retried with backoff instead: credentials can be fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator
from temporalio import activity
from temporalio.exceptions import ApplicationError

from fhir_mappings import capability, careplan, careteam, document, encounter, observation, outreach, task
from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from referral_service.activities.ehr_failures import activity_error
from referral_service.domain.assessment import AssessmentRecord
from referral_service.domain.attendance import SessionRecord
from referral_service.domain.careteam import CareTeamAssignment
from referral_service.domain.ehr_writes import EhrWrite, Refusal
from referral_service.domain.metric_names import EHR_WRITES
from referral_service.domain.program import Program, Track
from referral_service.domain.referral import Referral, ResourceRef
from referral_service.ehr.client import FhirClient
from referral_service.ehr.errors import AuthError, ConflictError, FhirError, describe_issue
from referral_service.logging import get_logger

log = get_logger()

REFUSED = "EhrWriteRefused"  # the ApplicationError type of a write refused for good
# A 409/412 is a lost race at first (two conditional creates of one identifier); by this attempt it is not.
CONFLICT_ATTEMPTS = 5
# What the referrer's Task lists as outputs: a plan or a session, or the note standing in for one.
TASK_OUTPUT_TYPES = frozenset({"CarePlan", "Encounter", "DocumentReference"})


class RefusalReport(BaseModel):
    """The details of a ``REFUSED`` activity error."""

    refusal: Refusal
    fallback: EhrWrite | None = None  # the DocumentReference note the EHR took instead
    fallback_refusal: Refusal | None = None  # ... or refused as well


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
        if cls is WriteCarePlanInput and not taken.get("follow_up_days") and taken.get("track_id"):
            taken.setdefault("track", program.track(str(taken["track_id"])))
        return taken


class WriteTaskInput(WriteInput):
    status: str
    business_status: str
    reason: str | None = None
    outputs: list[EhrWrite] = Field(default_factory=list)
    authored_on: datetime


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


class WritebackActivities:
    """Activities bound to one pooled FHIR client per referring EHR (keyed by source id)."""

    def __init__(self, clients: Mapping[str, FhirClient]) -> None:
        self._clients = clients
        self._updatable: dict[str, frozenset[str]] = {}  # per source id, from its CapabilityStatement

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.write_task,
            self.write_care_team,
            self.write_care_plan,
            self.write_encounter,
            self.write_observation,
            self.write_outreach_task,
        ]

    @activity.defn
    async def write_task(self, request: WriteTaskInput) -> EhrWrite:
        return await self._upsert(
            request,
            task.referral_task(
                request.referral,
                key=request.key,
                owner=request.organization,
                status=request.status,
                business_status=request.business_status,
                status_reason=request.reason,
                outputs=[w.ref() for w in request.outputs],
                authored_on=request.authored_on,
                last_modified=activity.info().current_attempt_scheduled_time,
            ),
        )

    @activity.defn
    async def write_care_team(self, request: WriteCareTeamInput) -> EhrWrite:
        return await self._upsert(
            request,
            careteam.care_team(
                request.referral,
                request.team,
                key=request.key,
                organization=request.organization,
                active=request.active,
                start=request.start,
            ),
        )

    @activity.defn
    async def write_care_plan(self, request: WriteCarePlanInput) -> EhrWrite:
        care_team = request.care_team.ref() if request.care_team else None
        if request.follow_up_days:
            resource = careplan.aftercare_plan(
                request.referral,
                key=request.key,
                status=request.status,
                start=request.start,
                follow_up_days=request.follow_up_days,
                care_team=care_team,
            )
        else:
            if request.track is None:
                raise ApplicationError("a treatment plan needs its track", type="BadWriteInput", non_retryable=True)
            resource = careplan.treatment_plan(
                request.referral,
                request.track,
                key=request.key,
                status=request.status,
                start=request.start,
                end=request.end,
                care_team=care_team,
                assessments=[w.ref() for w in request.assessments],
                team_members=[m.name for m in request.team.members.values()] if request.team else (),
            )
        return await self._upsert(request, resource)

    @activity.defn
    async def write_encounter(self, request: WriteEncounterInput) -> EhrWrite:
        return await self._upsert(
            request,
            encounter.session_encounter(
                request.referral,
                request.session,
                key=request.key,
                organization=request.organization,
            ),
        )

    @activity.defn
    async def write_observation(self, request: WriteObservationInput) -> EhrWrite:
        return await self._upsert(
            request, observation.assessment_observation(request.referral, request.assessment, key=request.key)
        )

    @activity.defn
    async def write_outreach_task(self, request: WriteOutreachInput) -> EhrWrite:
        return await self._upsert(
            request,
            outreach.outreach_task(
                request.referral,
                key=request.key,
                requester=request.organization,
                missed=request.missed,
                authored_on=request.authored_on,
            ),
        )

    async def _upsert(self, request: WriteInput, resource: dict[str, Any]) -> EhrWrite:
        client = self._clients.get(request.referral.source_id)
        if client is None:  # configuration, not the EHR: retried until the worker knows the source
            raise ApplicationError(f"no EHR configured for source {request.referral.source_id!r}", type="UnknownSource")
        if resource["resourceType"] in document.NOTE_TYPE and not await self._writable(
            client, resource["resourceType"]
        ):
            resource = document.note_instead(request.referral, resource, key=request.key)
        try:
            return await self._put(client, request.key, resource)
        except FhirError as error:
            if not _refused_for_good(client, error):
                raise activity_error(error) from None
            report = RefusalReport(refusal=_refused(client, resource["resourceType"], error))
        if resource["resourceType"] in document.NOTE_TYPE:  # a refused plan or session still reaches the chart
            try:
                report.fallback = await self._put(
                    client, request.key, document.note_instead(request.referral, resource, key=request.key)
                )
            except FhirError as error:
                if not _refused_for_good(client, error):
                    raise activity_error(error) from None
                report.fallback_refusal = _refused(client, "DocumentReference", error)
        refusal = report.refusal
        raise ApplicationError(
            f"the EHR refused the {refusal.resource_type} for good (HTTP {refusal.status}: {refusal.summary})",
            report.model_dump(mode="json"),
            type=REFUSED,
            non_retryable=True,
        )

    async def _put(self, client: FhirClient, key: str, resource: dict[str, Any]) -> EhrWrite:
        """The conditional update on the business identifier, counted and logged."""
        try:
            result = await client.update_conditional(resource, f"identifier={RESOURCE_KEY_SYSTEM}|{key}")
        except FhirError as error:
            outcome = "refused" if _refused_for_good(client, error) else type(error).__name__
            _count_write(client, resource["resourceType"], outcome)
            raise
        _count_write(client, result.resource_type, "created" if result.created else "updated")
        log.info(
            "ehr write",
            workflow_id=activity.info().workflow_id,
            source_id=client.source.id,
            resource_type=result.resource_type,
            resource_id=result.id,
            version=result.version,
            created=result.created,
        )
        return EhrWrite(
            key=key,
            resource_type=result.resource_type,
            id=result.id,
            version=result.version,
            created=result.created,
        )

    async def _writable(self, client: FhirClient, resource_type: str) -> bool:
        """The source's override if it has one, else whether its CapabilityStatement offers ``update``.

        A statement the EHR will not give at all counts as offering it: a refused write still gets the note."""
        override = client.source.writable.get(resource_type)
        if override is not None:
            return override
        if client.source.id not in self._updatable:
            try:
                statement = await client.capabilities()
            except FhirError as error:
                if not _refused_for_good(client, error):
                    raise activity_error(error) from None
                log.warning("ehr capabilities unreadable", source_id=client.source.id, status=error.status)
                return True
            self._updatable[client.source.id] = capability.updatable_types(statement)
        return resource_type in self._updatable[client.source.id]


def _count_write(client: FhirClient, resource_type: str, outcome: str) -> None:
    name, description = EHR_WRITES
    activity.metric_meter().create_counter(name, description).add(
        1, {"source": client.source.id, "resource_type": resource_type, "outcome": outcome}
    )


def _refused_for_good(client: FhirClient, error: FhirError) -> bool:
    """Whether another try cannot help: a conflict only once it has lasted ``CONFLICT_ATTEMPTS`` tries, and never
    a refusal of our credentials (401, or 403 from a source we authenticate to), which someone can fix."""
    if isinstance(error, AuthError) or (error.status == 403 and client.source.auth is not None):
        return False
    if isinstance(error, ConflictError):
        return activity.info().attempt >= CONFLICT_ATTEMPTS
    return not error.retryable


def _refused(client: FhirClient, resource_type: str, error: FhirError) -> Refusal:
    """The refusal as it is recorded, logged (no PHI: codes and descriptions, never diagnostics) and returned."""
    refusal = Refusal(
        resource_type=resource_type,
        status=error.status,
        summary=error.summary,
        codes=[str(issue["code"]) for issue in error.issues if issue.get("code")],
        issues=[text for text in map(describe_issue, error.issues) if text],
        attempts=activity.info().attempt,
    )
    log.warning(
        "ehr write refused",
        workflow_id=activity.info().workflow_id,
        source_id=client.source.id,
        resource_type=resource_type,
        status=refusal.status,
        issue_codes=refusal.codes,
        issue_descriptions=refusal.issues,
        attempt=refusal.attempts,
    )
    return refusal
