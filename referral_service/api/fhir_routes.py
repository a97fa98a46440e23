"""The FHIR intake endpoint: hospitals POST a ServiceRequest (or a Bundle), or their Task naming the
ServiceRequest in their EHR, and get the closed-loop Task.

A handler checks the caller, then hands the submission to the one intake path (``referral_service.intake``):
it starts the referral's workflow (its id is the referral key, so the same referral sent twice finds the
first) and answers without waiting for a worker, so a hospital is answered even while workers are down.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from fhir_mappings import capability, outcomes
from fhir_mappings.task_cancellation import cancellation_from_task
from referral_service.api.access import may_act_for_source, principal_of
from referral_service.api.deps import AppState, IntakeRatesDep, StateDep
from referral_service.api.fhir_responses import fhir_response, intake_response, outcome_response
from referral_service.api.intake_limits import throttled
from referral_service.api.sources import source_for
from referral_service.domain.lifecycle import cancellable
from referral_service.intake.take_in import Route
from referral_service.intake.task_answer import task_of
from referral_service.referrals import operations
from referral_service.referrals.errors import Ended, NoSuchReferral, ReferralError
from referral_service.store.intake_rates import IntakeRates
from workflows.referral_types import CancelInput, ReferralState

router = APIRouter(prefix="/fhir", tags=["FHIR intake"])
_QUERY_TIMEOUT = timedelta(seconds=5)


@router.get("/metadata")
async def metadata(services: StateDep) -> Response:
    """The CapabilityStatement of this endpoint (what it accepts, not the EHR's), at the configured public base
    URL (a request's Host header is the caller's to choose, so it is never echoed)."""
    settings = services.settings
    base = settings.public_base_url or (settings.auth.public_base_url if settings.auth else None)
    base = base or f"http://{settings.api_host}:{settings.api_port}"
    return fhir_response(capability.intake_capability_statement(base_url=base.rstrip("/") + "/fhir"))


@router.post("/ServiceRequest")
async def submit_service_request(request: Request, services: StateDep, rates: IntakeRatesDep) -> Response:
    """Submit one ServiceRequest (absolute or contained references)."""
    return await _submit(request, services, rates, expected="ServiceRequest")


@router.post("")
async def submit_bundle(request: Request, services: StateDep, rates: IntakeRatesDep) -> Response:
    """Submit a transaction or collection Bundle holding the ServiceRequest and what it references."""
    return await _submit(request, services, rates, expected="Bundle")


@router.post("/Task")
async def submit_task(request: Request, services: StateDep, rates: IntakeRatesDep) -> Response:
    """Task-based intake (Gravity): the referrer's Task whose ``focus`` is the ServiceRequest in its EHR."""
    return await _submit(request, services, rates, expected="Task")


@router.get("/Task/{task_id}")
async def read_task(task_id: str, request: Request, services: StateDep) -> Response:
    """The closed-loop Task of a referral, from the workflow's current state."""
    state = await _referral_state(task_id, request, services)
    return state if isinstance(state, Response) else fhir_response(task_of(state))


@router.put("/Task/{task_id}")
async def cancel_by_task(task_id: str, request: Request, services: StateDep) -> Response:
    """The referrer cancels its referral by sending its Task: with ``businessStatus`` ``cancellation-requested``
    (BSeR: the program confirms with ``cancelled`` / ``cancellation-confirmed`` once the plan and team are
    closed) or with ``status`` ``cancelled`` (Gravity). Answers the Task as it stands; the EHR's copy follows."""
    payload = await _read_json(request)
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
    try:
        await operations.cancel(
            services.temporal, task_id, CancelInput(reason=cancellation.reason, requested=cancellation.requested)
        )
    except Ended:  # it ended a moment ago
        return outcome_response([outcomes.conflict("the referral has just ended: nothing left to cancel", "Task")])
    except ReferralError:
        return outcome_response([outcomes.transient("the referral cannot be cancelled right now; retry")])
    return fhir_response(task_of(state))


async def _referral_state(task_id: str, request: Request, services: AppState) -> ReferralState | Response:
    """The referral's snapshot, or the OperationOutcome to answer with (unknown, another source's, down)."""
    unknown = outcomes.not_found(f"no referral Task with id {task_id}", "Task.id")
    try:
        state = await operations.snapshot(services.temporal, task_id)
    except NoSuchReferral:  # nothing by that id, or a workflow of another type (a poll schedule's run)
        return outcome_response([unknown])
    except ReferralError:
        return outcome_response([outcomes.transient("the referral's state cannot be read right now; retry")])
    if not may_act_for_source(principal_of(request), state.referral.source_id):
        return outcome_response([unknown])  # another hospital's referral: not even its existence is shown
    return state


async def _submit(request: Request, services: AppState, rates: IntakeRates, *, expected: str) -> Response:
    """Push (a ServiceRequest or a Bundle) and the referrer's Task (which names the ServiceRequest in its EHR):
    the caller's source, its rights and rate, then the one intake path."""
    payload = await _read_json(request)
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
    busy = await throttled(rates, source)
    if busy is not None:
        return busy
    ehr, now = services.ehr_clients[source], datetime.now(UTC)
    if expected == "Task":
        answer = await services.intake.take_in_task(payload, ehr=ehr, received_at=now)
    else:
        answer = await services.intake.take_in(payload, route=Route.PUSH, ehr=ehr, received_at=now)
    return intake_response(answer)


async def _read_json(request: Request) -> dict[str, Any] | Response:
    """The body as a JSON object (no larger than the gate lets through), or the OperationOutcome to answer
    with (not JSON, not an object)."""
    payload, issues = _parse_json(await request.body())
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
