"""Intake by subscription: the referring EHR's rest-hook Subscription delivers each new or changed
ServiceRequest as ``PUT /subscriptions/<source>/ServiceRequest/<id>`` (R4 rest-hook, ``payload`` =
``application/fhir+json``).

The delivery says *which* ServiceRequest changed; the referral is read back from the EHR with its Patient,
discharge Encounter and requester (the same search and mapping as polling), then started exactly like a
pushed one, or cancelled when the referrer revoked it. A referral already started by any route is left alone.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from temporalio.service import RPCError

from fhir_mappings import outcomes, searchset
from fhir_mappings.referral_in import acceptable_for_intake, referral_from_fhir
from referral_service.api.access import may_act_for_source, principal_of
from referral_service.api.audit_trail import note_referrals
from referral_service.api.deps import StateDep
from referral_service.api.fhir_responses import outcome_response
from referral_service.api.fhir_routes import start_referral
from referral_service.domain.referral import referral_key
from referral_service.ehr.client import FhirClient
from referral_service.ehr.errors import FhirError
from workflows.referral import ReferralWorkflow
from workflows.referral_types import CancelInput

router = APIRouter(prefix="/subscriptions", tags=["FHIR intake"])


@router.put("/{source_id}/ServiceRequest/{request_id}")
async def deliver(source_id: str, request_id: str, request: Request, services: StateDep) -> Response:
    """A rest-hook delivery of one ServiceRequest from ``source_id``."""
    try:
        source = services.settings.source(source_id)
    except KeyError:
        return outcome_response([outcomes.not_found(f"no referring EHR {source_id!r} is configured", None)])
    if not may_act_for_source(principal_of(request), source_id):
        return outcome_response([outcomes.security(f"this token may not deliver for {source_id}", login=False)])
    try:
        async with FhirClient(source.connection()) as ehr:
            page = await anext(
                ehr.search_pages("ServiceRequest", {"_id": request_id, "_include": list(searchset.INCLUDES)})
            )
    except FhirError as error:
        return outcome_response(
            [outcomes.transient(f"the ServiceRequest cannot be read back from {source_id}: {error}")]
        )
    bundles = searchset.referral_bundles(page)
    if not bundles:
        return outcome_response([outcomes.not_found(f"ServiceRequest/{request_id} is not in {source_id}", None)])
    try:
        referral = referral_from_fhir(
            bundles[0],
            source_id=source_id,
            program_org=services.program.organization,
            received_at=datetime.now(UTC),
            source_base_url=str(source.base_url),
        )
    except outcomes.UnusableReferral as error:
        return outcome_response(error.issues)
    if acceptable_for_intake(referral.status):
        return await start_referral(referral, services)
    if referral.status == "revoked":
        key = referral_key(source_id, referral.placer_identifier)
        note_referrals(request, [key])
        handle = services.temporal.get_workflow_handle_for(ReferralWorkflow.run, key)
        with contextlib.suppress(RPCError):  # never taken in, or already ended: nothing to cancel
            await handle.signal(ReferralWorkflow.cancel, CancelInput(reason="revoked by referrer (subscription)"))
    return Response(status_code=204)
