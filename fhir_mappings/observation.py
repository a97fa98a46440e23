"""One Observation per recorded assessment (category survey, LOINC total-score code)."""

from __future__ import annotations

from typing import Any

from fhir_mappings import codes
from fhir_mappings.common import business_identifier, concept, reference, validated
from referral_service.domain.assessment import AssessmentRecord
from referral_service.domain.referral import Referral


def assessment_observation(referral: Referral, assessment: AssessmentRecord, *, key: str) -> dict[str, Any]:
    code, display = codes.ASSESSMENT_LOINC[assessment.instrument]
    return validated(
        {
            "resourceType": "Observation",
            "identifier": business_identifier(key),
            "basedOn": [reference(referral.service_request)],
            "status": "final",
            "category": [concept(codes.OBSERVATION_CATEGORY, "survey", "Survey")],
            "code": concept(codes.LOINC, code, display, text=assessment.instrument.value),
            "subject": reference(referral.patient.ref),
            "effectiveDateTime": assessment.date.isoformat(),
            "valueInteger": assessment.score,
        }
    )
