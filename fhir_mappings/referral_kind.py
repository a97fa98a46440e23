"""Whether a ServiceRequest is a referral to this level of care at all, by its code and category.

Referral coding varies by EHR (SNOMED referral concepts, HCPCS IOP codes, local codes, text alone), so an
unknown code is taken; only an order that is plainly something else (a lab test, imaging, a DNR directive)
is refused. The lists are the program's configuration (``ReferralCodes``)."""

from __future__ import annotations

from typing import Any

from fhir_mappings.outcomes import OutcomeIssue, business_rule
from referral_service.domain.program import ReferralCodes


def kind_issue(request: dict[str, Any], rules: ReferralCodes) -> OutcomeIssue | None:
    """An issue naming ``ServiceRequest.code`` when the order is plainly not a referral, else None."""
    codes = _codings(request.get("code"))
    categories = [c for concept in _list(request.get("category")) for c in _codings(concept)]
    if any(f"{system}|{code}" in rules.referral for system, code in codes + categories):
        return None
    if any(system in rules.not_referral_systems for system, _ in codes):
        return business_rule(
            "the order is a test (its code is from a test code system), not a referral", "ServiceRequest.code"
        )
    if any(f"{system}|{code}" in rules.not_referral for system, code in codes + categories):
        return business_rule(
            "the order's code or category is not a referral to this program's level of care", "ServiceRequest.code"
        )
    return None


def _codings(concept: Any) -> list[tuple[str, str]]:
    if not isinstance(concept, dict):
        return []
    return [
        (str(c.get("system")), str(c.get("code")))
        for c in _list(concept.get("coding"))
        if isinstance(c, dict) and c.get("system") and c.get("code")
    ]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
