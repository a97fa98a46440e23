"""The FHIR intake endpoint: hospitals POST a ServiceRequest (or a Bundle) and get the closed-loop Task.

A handler validates, starts the referral's workflow (its id is the referral key, so the same referral
sent twice finds the first) and returns; it never waits for a worker, so a hospital gets its answer even
while workers are down.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowQueryFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from fhir_mappings import capability, outcomes, task
from fhir_mappings.referral_in import acceptable_for_intake, referral_from_fhir
from fhir_mappings.task_cancellation import cancellation_from_task
from referral_service.api.access import may_act_for_source, principal_of
from referral_service.api.deps import AppState, StateDep
from referral_service.api.fhir_responses import fhir_response, outcome_response
from referral_service.api.intake_limits import read_body
from referral_service.api.sources import source_for
from referral_service.domain.lifecycle import Phase
from referral_service.domain.patient_match import match_keys
from referral_service.domain.referral import Referral, referral_key
from referral_service.domain.referrer_task import referrer_task
from referral_service.logging import get_logger
from workflows import search_attributes
from workflows.referral import ReferralWorkflow, cancellable
from workflows.referral_types import CancelInput, ReferralState, StartReferralInput

router = APIRouter(prefix="/fhir", tags=["FHIR intake"])
_QUERY_TIMEOUT = timedelta(seconds=5)
_MAX_DUPLICATES = 20  # enough for the coordinator to see there is a problem
log = get_logger()


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    """The CapabilityStatement of this endpoint (what it accepts, not the EHR's)."""
    return fhir_response(capability.intake_capability_statement(base_url=str(request.base_url) + "fhir"))


@router.post("/ServiceRequest")
async def submit_service_request(request: Request, services: StateDep) -> Response:
    """Submit one ServiceRequest (absolute or contained references)."""
    return await _submit(request, services, expected="ServiceRequest")


@router.post("")
async def submit_bundle(request: Request, services: StateDep) -> Response:
    """Submit a transaction or collection Bundle holding the ServiceRequest and what it references."""
    return await _submit(request, services, expected="Bundle")


@router.get("/Task/{task_id}")
async def read_task(task_id: str, request: Request, services: StateDep) -> Response:
    """The closed-loop Task of a referral, from the workflow's current state."""
    state = await _referral_state(task_id, request, services)
    return state if isinstance(state, Response) else fhir_response(_task_of(state))


@router.put("/Task/{task_id}")
async def cancel_by_task(task_id: str, request: Request, services: StateDep) -> Response:
    """The referrer cancels its referral by sending its Task: with ``businessStatus`` ``cancellation-requested``
    (BSeR: the program confirms with ``cancelled`` / ``cancellation-confirmed`` once the plan and team are
    closed) or with ``status`` ``cancelled`` (Gravity). Answers the Task as it stands; the EHR's copy follows."""
    payload = await _read_json(request, services)
    if isinstance(payload, Response):
        return payload
    try:
        cancellation = cancellation_from_task(payload, task_id)
    except outcomes.UnusableReferral as error:
        return outcome_response(error.issues)
    state = await _referral_state(task_id, request, services)
    if isinstance(state, Response):
        return state
    if not cancellable(state.phase):
        return outcome_response(
            [outcomes.conflict(f"the referral is {state.phase}: there is nothing left to cancel", "Task.status")]
        )
    handle = services.temporal.get_workflow_handle_for(ReferralWorkflow.run, task_id)
    try:
        await handle.signal(
            ReferralWorkflow.cancel, CancelInput(reason=cancellation.reason, requested=cancellation.requested)
        )
    except RPCError:  # it ended a moment ago
        return outcome_response([outcomes.conflict("the referral has just ended: nothing left to cancel", "Task")])
    return fhir_response(_task_of(state))


async def _referral_state(task_id: str, request: Request, services: AppState) -> ReferralState | Response:
    """The referral's snapshot, or the OperationOutcome to answer with (unknown, another source's, down)."""
    handle = services.temporal.get_workflow_handle_for(ReferralWorkflow.run, task_id)
    unknown = outcomes.not_found(f"no referral Task with id {task_id}", "Task.id")
    try:
        state = await handle.query(ReferralWorkflow.snapshot, rpc_timeout=_QUERY_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return outcome_response([unknown])
        return outcome_response([outcomes.transient("the referral's state cannot be read right now; retry")])
    if not may_act_for_source(principal_of(request), state.referral.source_id):
        return outcome_response([unknown])  # another hospital's referral: not even its existence is shown
    return state


async def _submit(request: Request, services: StateDep, *, expected: str) -> Response:
    payload = await _read_json(request, services)
    if isinstance(payload, Response):
        return payload
    if payload.get("resourceType") != expected:
        return outcome_response([outcomes.invalid(f"expected a {expected} here", f"{expected}.resourceType")])
    principal = principal_of(request)
    declared = request.headers.get("X-Referral-Source") or principal.source
    source = source_for(payload, services.settings, declared)
    if isinstance(source, outcomes.OutcomeIssue):
        return outcome_response([source])
    if not may_act_for_source(principal, source):
        return outcome_response([outcomes.security(f"this token may not submit for {source}", login=False)])
    wait = services.intake_limiter.retry_after(source)
    if wait:
        log.warning("intake throttled", source_id=source, retry_after=wait)
        busy = outcomes.throttled(f"too many referrals from {source}; retry after {wait} s")
        return outcome_response([busy], headers={"Retry-After": str(wait)})
    try:
        referral = referral_from_fhir(
            payload,
            source_id=source,
            program_org=services.program.organization,
            received_at=datetime.now(UTC),
            source_base_url=str(services.settings.source(source).base_url),
        )
    except outcomes.UnusableReferral as error:
        return outcome_response(error.issues)
    if not acceptable_for_intake(referral.status):
        return outcome_response(
            [outcomes.business_rule(f"a new referral must be active, not {referral.status}", "ServiceRequest.status")]
        )
    return await start_referral(referral, services)


async def start_referral(referral: Referral, services: AppState) -> Response:
    """Start the referral's workflow (once: its id is the referral key) and answer with its Task."""
    key = referral_key(referral.source_id, referral.placer_identifier)
    patient_keys = match_keys(referral.patient, services.patient_match_secret)
    start = StartReferralInput(
        key=key,
        referral=referral,
        program=services.program,
        received_at=datetime.now(UTC),
        possible_duplicates=await _open_referrals_matching(patient_keys, key, services),
    )
    attributes: list[SearchAttributePair[Any]] = [
        SearchAttributePair(search_attributes.PHASE, str(Phase.RECEIVED)),
        SearchAttributePair(search_attributes.SOURCE, referral.source_id),
        SearchAttributePair(search_attributes.AT_RISK, False),
    ]
    if patient_keys:
        attributes.append(SearchAttributePair(search_attributes.PATIENT_MATCH, patient_keys))
    try:
        await services.temporal.start_workflow(
            ReferralWorkflow.run,
            start,
            id=key,
            task_queue=services.settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(attributes),
        )
    except WorkflowAlreadyStartedError:
        return await _existing(key, referral, services)
    received = ReferralState(key=key, referral=referral, program=services.program, received_at=start.received_at)
    return fhir_response(_task_of(received), 201, {"Location": f"Task/{key}"})


async def _open_referrals_matching(patient_keys: list[str], key: str, services: AppState) -> list[str]:
    """Ids of running referrals whose patient shares a match key: flagged for the coordinator, never merged.

    Visibility is eventually consistent, so a referral started a moment ago may not be found yet. A server
    that cannot answer (down, or without visibility like the time-skipping test server) skips the check
    rather than refusing the referral; the warning names the status only, never the query or the patient.
    """
    if not patient_keys:
        return []
    keys = ", ".join(f"'{k}'" for k in patient_keys)  # hex digests and a sanitised id: nothing to escape
    query = (
        f"WorkflowType = 'ReferralWorkflow' AND ExecutionStatus = 'Running'"
        f" AND {search_attributes.PATIENT_MATCH.name} IN ({keys}) AND WorkflowId != '{key}'"
    )
    found = services.temporal.list_workflows(query, limit=_MAX_DUPLICATES, rpc_timeout=_QUERY_TIMEOUT)
    try:
        return sorted({execution.id async for execution in found})
    except RPCError as error:
        log.warning("duplicate patient check skipped", referral_key=key, status=error.status.name)
        return []


async def _existing(key: str, referral: Referral, services: AppState) -> Response:
    """The same referral again: answer with its Task as it stands, start nothing."""
    handle = services.temporal.get_workflow_handle_for(ReferralWorkflow.run, key)
    description = await handle.describe()
    closed = description.status != WorkflowExecutionStatus.RUNNING
    state = await _state_of(handle, description.status)
    if state is not None:
        body = _task_of(state)
    else:  # no worker answered: the phase alone, from the search attributes, still says where it stands
        phase = Phase(description.typed_search_attributes.get(search_attributes.PHASE) or Phase.RECEIVED)
        told = referrer_task(phase)
        body = task.referral_task(
            referral,
            key=f"{key}/task",
            owner=services.program.organization,
            status=told.status,
            business_status=told.business_status,
            status_reason=told.reason,
            task_id=key,
            authored_on=description.start_time,
            last_modified=description.close_time or description.start_time,
        )
    return fhir_response(body, 200, {"Location": f"Task/{key}", "X-Referral-Closed": str(closed).lower()})


async def _state_of(
    handle: WorkflowHandle[ReferralWorkflow, ReferralState], status: WorkflowExecutionStatus | None
) -> ReferralState | None:
    """The referral's state: a completed one's result (no worker needed), else the snapshot query; None when no
    worker answers in time."""
    try:
        if status == WorkflowExecutionStatus.COMPLETED:
            return await handle.result(rpc_timeout=_QUERY_TIMEOUT)
        return await handle.query(ReferralWorkflow.snapshot, rpc_timeout=_QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError):
        return None


def _task_of(state: ReferralState) -> dict[str, Any]:
    """The referrer's Task as the referral's state makes it (what the workflow last sent the EHR)."""
    told = state.referrer_task()
    return task.referral_task(
        state.referral,
        key=f"{state.key}/task",
        owner=state.program.organization,
        status=told.status,
        business_status=told.business_status,
        status_reason=told.reason,
        task_id=state.key,
        authored_on=state.received_at,
        last_modified=state.timeline[-1].at if state.timeline else state.received_at,
        outputs=[write.ref() for write in state.task_outputs()],
    )


async def _read_json(request: Request, services: AppState) -> dict[str, Any] | Response:
    """The body as a JSON object, or the OperationOutcome to answer with (too large, not JSON, not an object)."""
    limit = services.settings.intake.max_body_bytes
    body = await read_body(request, limit)
    if body is None:
        return outcome_response([outcomes.too_costly(f"the body is larger than {limit} bytes")])
    payload, issues = _parse_json(body)
    return outcome_response(issues) if payload is None else payload


def _parse_json(body: bytes) -> tuple[dict[str, Any] | None, list[outcomes.OutcomeIssue]]:
    try:
        payload = json.loads(body, parse_constant=_not_json)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None, [outcomes.structure("the body is not valid JSON", "")]
    except RecursionError:
        return None, [outcomes.structure("the body nests too deeply to be a FHIR resource", "")]
    if not isinstance(payload, dict):
        return None, [outcomes.structure("the body must be a JSON object (a FHIR resource)", "")]
    return payload, []


def _not_json(constant: str) -> Any:
    """NaN and Infinity: Python reads them, but they are not JSON and FHIR has no such numbers."""
    raise json.JSONDecodeError(f"{constant} is not a JSON value", constant, 0)
