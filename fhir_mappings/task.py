"""The closed-loop referral Task (FHIR core Task + BSeR business statuses). What it says, and the state machine it
moves along, are the domain's (``referral_service.domain.referrer_task``); this shapes it as FHIR."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_mappings import codes
from fhir_mappings.common import business_identifier, concept, reference, validated
from referral_service.domain.referral import Referral, ResourceRef
from referral_service.domain.referrer_task import NEEDS_REASON


def referral_task(
    referral: Referral,
    *,
    key: str,
    owner: ResourceRef,
    status: str,
    business_status: str,
    authored_on: datetime,
    last_modified: datetime,
    status_reason: str | None = None,
    outputs: list[ResourceRef] | None = None,
    task_id: str | None = None,
) -> dict[str, Any]:
    """Task(intent=order, code=fulfill) focused on the ServiceRequest, owned by the program."""
    if status in NEEDS_REASON and not status_reason:
        raise ValueError(f"a {status} Task needs a statusReason")
    service_request = reference(referral.service_request)
    task: dict[str, Any] = {
        "resourceType": "Task",
        "identifier": business_identifier(key),
        "basedOn": [service_request],
        "status": status,
        "businessStatus": concept(
            codes.BUSINESS_STATUS_SYSTEM, business_status, codes.BUSINESS_STATUS.get(business_status)
        ),
        "intent": "order",
        "code": concept(codes.TASK_CODE, "fulfill", "Fulfill the focal request"),
        "focus": service_request,
        "for": reference(referral.patient.ref),
        "authoredOn": authored_on.isoformat(),
        "lastModified": last_modified.isoformat(),
        "owner": reference(owner),
    }
    if task_id:
        task["id"] = task_id
    if referral.requester is not None:
        task["requester"] = reference(referral.requester)
    if status_reason:
        task["statusReason"] = {"text": status_reason}
    if outputs:
        task["output"] = [
            {"type": concept(codes.OUTPUT_TYPE_SYSTEM, ref.resource_type), "valueReference": reference(ref)}
            for ref in outputs
        ]
    return validated(task)
