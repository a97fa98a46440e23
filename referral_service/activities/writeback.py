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

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from fhir_mappings import (
    capability,
    careplan,
    careteam,
    document,
    encounter,
    observation,
    outreach,
    task,
    write_transaction,
)
from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from referral_service.activities.ehr_failures import activity_error
from referral_service.activities.write_inputs import (
    AcceptanceWrites,
    WriteAcceptanceInput,
    WriteCarePlanInput,
    WriteCareTeamInput,
    WriteEncounterInput,
    WriteInput,
    WriteObservationInput,
    WriteOutreachInput,
    WriteTaskInput,
)
from referral_service.domain.ehr_writes import EhrWrite, Refusal
from referral_service.domain.metric_names import EHR_WRITES
from referral_service.ehr.client import FhirClient
from referral_service.ehr.errors import AuthError, ConflictError, FhirError, describe_issue
from referral_service.ehr.responses import parse_location
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


class WritebackActivities:
    """Activities bound to one pooled FHIR client per referring EHR (keyed by source id)."""

    def __init__(self, clients: Mapping[str, FhirClient]) -> None:
        self._clients = clients
        self._offered: dict[str, capability.Offered] = {}  # per source id, from its CapabilityStatement
        # One read of a source's statement, however many writes are waiting for it.
        self._reading: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.write_task,
            self.write_care_team,
            self.write_care_plan,
            self.write_encounter,
            self.write_observation,
            self.write_outreach_task,
            self.write_acceptance,
        ]

    @activity.defn
    async def write_task(self, request: WriteTaskInput) -> EhrWrite:
        return await self._upsert(request, _task(request))

    @activity.defn
    async def write_care_team(self, request: WriteCareTeamInput) -> EhrWrite:
        return await self._upsert(request, _care_team(request))

    @activity.defn
    async def write_care_plan(self, request: WriteCarePlanInput) -> EhrWrite:
        return await self._upsert(request, _care_plan(request))

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

    @activity.defn
    async def write_acceptance(self, request: WriteAcceptanceInput) -> AcceptanceWrites:
        """The acceptance's CareTeam, CarePlan and Task as one transaction, where the EHR offers transactions and
        takes the plan as a CarePlan. Not taken (the workflow then writes each on its own, where a refusal and
        the note instead of a plan are per resource): no transaction offered, or this one refused for good."""
        client = self._client(request.task)
        if not await self._takes_transactions(client) or not await self._writable(client, "CarePlan"):
            return AcceptanceWrites(taken=False)
        bundle = write_transaction.acceptance_transaction(
            write_transaction.Keyed(request.team.key, _care_team(request.team)),
            write_transaction.Keyed(request.plan.key, _care_plan(request.plan)),
            write_transaction.Keyed(request.task.key, _task(request.task)),
        )
        try:
            answer = await client.transaction(bundle)
        except FhirError as error:
            if not _refused_for_good(client, error):
                raise activity_error(error) from None
            # No PHI: the status and issue codes. Written alone next, each resource says which one the EHR refuses.
            log.warning(
                "ehr transaction refused, writing each resource alone",
                workflow_id=activity.info().workflow_id,
                source_id=client.source.id,
                status=error.status,
                issue_codes=[str(issue["code"]) for issue in error.issues if issue.get("code")],
            )
            return AcceptanceWrites(taken=False)
        keys = (request.team.key, request.plan.key, request.task.key)
        entries = answer.get("entry") or []
        return AcceptanceWrites(
            taken=True, writes=[_entry_written(client, k, e) for k, e in zip(keys, entries, strict=True)]
        )

    def _client(self, request: WriteInput) -> FhirClient:
        client = self._clients.get(request.referral.source_id)
        if client is None:  # configuration, not the EHR: retried until the worker knows the source
            raise ApplicationError(f"no EHR configured for source {request.referral.source_id!r}", type="UnknownSource")
        return client

    async def _upsert(self, request: WriteInput, resource: dict[str, Any]) -> EhrWrite:
        client = self._client(request)
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
        return _recorded(client, key, result.resource_type, result.id, result.version, created=result.created)

    async def _writable(self, client: FhirClient, resource_type: str) -> bool:
        """The source's override if it has one, else whether its CapabilityStatement offers ``update``.

        A statement the EHR will not give at all counts as offering it: a refused write still gets the note."""
        override = client.source.writable.get(resource_type)
        if override is not None:
            return override
        return (await self._offers(client)).updates(resource_type)

    async def _takes_transactions(self, client: FhirClient) -> bool:
        """The source's override if it has one, else whether its CapabilityStatement offers ``transaction``."""
        if client.source.transactions is not None:
            return client.source.transactions
        return (await self._offers(client)).transactions

    async def _offers(self, client: FhirClient) -> capability.Offered:
        """What the source's CapabilityStatement offers, read once per worker; nothing stated (and read again
        next time) when the EHR will not give one."""
        source = client.source.id
        async with self._reading[source]:
            if source not in self._offered:
                try:
                    statement = await client.capabilities()
                except FhirError as error:
                    if not _refused_for_good(client, error):
                        raise activity_error(error) from None
                    log.warning("ehr capabilities unreadable", source_id=source, status=error.status)
                    return capability.offered({})
                self._offered[source] = capability.offered(statement)
        return self._offered[source]


def _task(request: WriteTaskInput) -> dict[str, Any]:
    return task.referral_task(
        request.referral,
        key=request.key,
        owner=request.organization,
        status=request.status,
        business_status=request.business_status,
        status_reason=request.reason,
        outputs=[w.ref() for w in request.outputs],
        authored_on=request.authored_on,
        last_modified=request.modified_at or activity.info().current_attempt_scheduled_time,
    )


def _care_team(request: WriteCareTeamInput) -> dict[str, Any]:
    return careteam.care_team(
        request.referral,
        request.team,
        key=request.key,
        organization=request.organization,
        active=request.active,
        start=request.start,
    )


def _care_plan(request: WriteCarePlanInput) -> dict[str, Any]:
    care_team = request.care_team.ref() if request.care_team else None
    if request.follow_up_days:
        return careplan.aftercare_plan(
            request.referral,
            key=request.key,
            status=request.status,
            start=request.start,
            follow_up_days=request.follow_up_days,
            care_team=care_team,
        )
    if request.track is None:
        raise ApplicationError("a treatment plan needs its track", type="BadWriteInput", non_retryable=True)
    return careplan.treatment_plan(
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


def _entry_written(client: FhirClient, key: str, entry: dict[str, Any]) -> EhrWrite:
    """One entry of a transaction's response: where the EHR wrote it (``response.location``) and whether anew."""
    answer = entry.get("response") or {}
    location = parse_location(answer.get("location"))
    if location is None or location.version is None:
        raise ApplicationError("the EHR's transaction response names no written resource", type="BadEhrAnswer")
    created = str(answer.get("status", "")).startswith("201")
    return _recorded(client, key, location.resource_type, location.id, location.version, created=created)


def _recorded(
    client: FhirClient, key: str, resource_type: str, resource_id: str, version: str | None, *, created: bool
) -> EhrWrite:
    """A write the EHR took, counted and logged."""
    _count_write(client, resource_type, "created" if created else "updated")
    log.info(
        "ehr write",
        workflow_id=activity.info().workflow_id,
        source_id=client.source.id,
        resource_type=resource_type,
        resource_id=resource_id,
        version=version,
        created=created,
    )
    return EhrWrite(key=key, resource_type=resource_type, id=resource_id, version=version, created=created)


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
