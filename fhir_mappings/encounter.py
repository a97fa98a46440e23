"""One Encounter per attended session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_mappings import codes
from fhir_mappings.common import business_identifier, concept, reference, validated
from referral_service.domain.attendance import SessionRecord
from referral_service.domain.referral import Referral, ResourceRef


def session_encounter(
    referral: Referral, session: SessionRecord, *, key: str, organization: ResourceRef
) -> dict[str, Any]:
    start = datetime.combine(session.date, session.start_time, tzinfo=UTC)
    cls, cls_display = codes.MODALITY_CLASS[session.modality]
    cpt, display = codes.SESSION_CPT[session.kind]
    return validated(
        {
            "resourceType": "Encounter",
            "identifier": business_identifier(key),
            "status": "finished",
            "class": {"system": codes.V3_ACT_CODE, "code": cls, "display": cls_display},
            "type": [concept(codes.CPT, cpt, display, text=session.kind.value)],
            "subject": reference(referral.patient.ref),
            "basedOn": [reference(referral.service_request)],
            "period": {
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=session.minutes)).isoformat(),
            },
            "serviceProvider": reference(organization),
        }
    )
