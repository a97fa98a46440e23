"""The outreach Task written when consecutive absences put a referral at risk: one per absence streak."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_mappings import codes
from fhir_mappings.common import business_identifier, concept, reference, validated
from referral_service.domain.referral import Referral, ResourceRef


def outreach_task(
    referral: Referral, *, key: str, requester: ResourceRef, missed: int, authored_on: datetime
) -> dict[str, Any]:
    """Task(intent=order, status=requested) for the patient, focused on the referral. No owner: the care
    team is written by display only (no Practitioner references), so the EHR routes it."""
    code, display = codes.OUTREACH
    return validated(
        {
            "resourceType": "Task",
            "identifier": business_identifier(key),
            "status": "requested",
            "intent": "order",
            "priority": "urgent",
            "code": concept(codes.PROGRAM_TASK_SYSTEM, code, display),
            "description": f"{missed} consecutive IOP sessions missed: contact the patient",
            "focus": reference(referral.service_request),
            "for": reference(referral.patient.ref),
            "authoredOn": authored_on.isoformat(),
            "requester": reference(requester),
        }
    )
