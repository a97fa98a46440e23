"""Intake by subscription: the referring EHR's rest-hook Subscription delivers each new or changed
ServiceRequest as ``PUT /subscriptions/<source>/ServiceRequest/<id>`` (R4 rest-hook, ``payload`` =
``application/fhir+json``).

The delivery says *which* ServiceRequest changed; the referral is read back from the EHR with its Patient,
discharge Encounter and requester and goes through the one intake path (``referral_service.intake``): started
like a pushed one when it names the program as performer, or cancelled when the referrer revoked it. A
referral already started by any route is left alone.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from fhir_mappings import outcomes
from referral_service.api.access import may_act_for_source, principal_of
from referral_service.api.audit_trail import note_referrals
from referral_service.api.deps import IntakeRatesDep, StateDep
from referral_service.api.fhir_responses import intake_response, outcome_response
from referral_service.api.intake_limits import throttled
from referral_service.intake.take_in import Route

router = APIRouter(prefix="/subscriptions", tags=["FHIR intake"])


@router.put("/{source_id}/ServiceRequest/{request_id}")
async def deliver(
    source_id: str, request_id: str, request: Request, services: StateDep, rates: IntakeRatesDep
) -> Response:
    """A rest-hook delivery of one ServiceRequest from ``source_id``."""
    if source_id not in services.ehr_clients:
        return outcome_response([outcomes.not_found(f"no referring EHR {source_id!r} is configured", None)])
    if not may_act_for_source(principal_of(request), source_id):
        return outcome_response([outcomes.security(f"this token may not deliver for {source_id}", login=False)])
    busy = await throttled(rates, source_id)  # each delivery costs an EHR search: held to the rate
    if busy is not None:
        return busy
    answer = await services.intake.take_in_stored(
        request_id, route=Route.SUBSCRIPTION, ehr=services.ehr_clients[source_id], received_at=datetime.now(UTC)
    )
    note_referrals(request, list(answer.cancelled))
    return intake_response(answer)
