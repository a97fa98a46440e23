"""Unusable referrals: each rule answers with an OperationOutcome issue naming the element at fault."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from fhir_mappings.outcomes import UnusableReferral, http_status
from fhir_mappings.referral_in import referral_from_fhir
from referral_service.domain.program import Program
from tests.mappings.cast import CAST, submission

Edit = Callable[[dict[str, Any]], object]
ADA, _, CORA = CAST


def _service_request(payload: dict[str, Any]) -> dict[str, Any]:
    if payload["resourceType"] == "ServiceRequest":
        return payload
    found: dict[str, Any] = next(
        e["resource"] for e in payload["entry"] if e["resource"]["resourceType"] == "ServiceRequest"
    )
    return found


_LAB_ORDER = {"coding": [{"system": "http://loinc.org", "code": "24323-8", "display": "Comprehensive metabolic panel"}]}


def _anonymous(payload: dict[str, Any]) -> None:
    """A ServiceRequest with nothing to key it by: no identifier, no id, no fullUrl."""
    _service_request(payload).pop("identifier")
    _service_request(payload).pop("id", None)
    for entry in payload["entry"]:
        if entry["resource"]["resourceType"] == "ServiceRequest":
            entry.pop("fullUrl", None)


def _for_another_patient(entry: dict[str, Any]) -> dict[str, Any]:
    other = copy.deepcopy(entry)
    other["fullUrl"] = "urn:uuid:0b7e7a7e-1f0e-4d55-9d7e-00000000ffff"
    other["resource"]["identifier"][0]["value"] = "SR-OTHER"
    other["resource"]["subject"] = {"reference": "Patient/someone-else"}
    return other


def _encounter(payload: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(
        e["resource"] for e in payload["entry"] if e["resource"]["resourceType"] == "Encounter"
    )
    return found


# (what the hospital sent wrong, the member whose referral is edited, the edit, element named, HTTP status)
CASES: list[tuple[str, str, Edit, str, int]] = [
    ("no subject", ADA.name, lambda p: _service_request(p).pop("subject"), "ServiceRequest.subject", 400),
    (
        "subject is not a Patient",
        ADA.name,
        lambda p: _service_request(p).update(subject={"reference": "Group/g1"}),
        "ServiceRequest.subject",
        400,
    ),
    ("no identifier, id or fullUrl", ADA.name, lambda p: _anonymous(p), "ServiceRequest.identifier", 422),
    ("status not a code", ADA.name, lambda p: _service_request(p).update(status="sent"), "ServiceRequest.status", 422),
    (
        "intent a proposal",
        ADA.name,
        lambda p: _service_request(p).update(intent="proposal"),
        "ServiceRequest.intent",
        422,
    ),
    (
        "authoredOn not a dateTime",
        ADA.name,
        lambda p: _service_request(p).update(authoredOn=12),
        "ServiceRequest.authoredOn",
        400,
    ),
    (
        "unknown element",
        CORA.name,
        lambda p: _service_request(p).update(colour="blue"),
        "ServiceRequest.colour",
        400,
    ),
    (
        "addressed to another program",
        CORA.name,
        lambda p: _service_request(p)["performer"][0]["identifier"].update(value="1234567893"),
        "ServiceRequest.performer",
        422,
    ),
    (
        "discharge ends before it starts",
        ADA.name,
        lambda p: _encounter(p)["period"].update(end="2026-11-01T00:00:00Z"),
        "Encounter.period",
        400,
    ),
    (
        "discharge long after the referral",
        ADA.name,
        lambda p: _encounter(p)["period"].update(end="2026-12-20T00:00:00Z"),
        "Encounter.period.end",
        422,
    ),
    (
        "two ServiceRequests to the program for different patients",
        ADA.name,
        lambda p: p["entry"].append(_for_another_patient(p["entry"][-1])),
        "Bundle.entry.resource.ofType(ServiceRequest)",
        422,
    ),
    ("a lab order", ADA.name, lambda p: _service_request(p).update(code=_LAB_ORDER), "ServiceRequest.code", 422),
    ("Bundle of the wrong type", ADA.name, lambda p: p.update(type="searchset"), "Bundle.type", 422),
    ("a Patient, not a referral", CORA.name, lambda p: p.update(resourceType="Patient"), "Patient", 400),
]


@pytest.mark.parametrize(("problem", "member", "edit", "expression", "status"), CASES, ids=[c[0] for c in CASES])
def test_unusable_referral_names_the_element(
    problem: str, member: str, edit: Edit, expression: str, status: int, program: Program
) -> None:
    payload = submission(next(m for m in CAST if m.name == member))
    edit(payload)
    with pytest.raises(UnusableReferral) as rejected:
        referral_from_fhir(payload, source_id="lakeside", program_org=program.organization)
    named = [e for issue in rejected.value.issues for e in issue.expression]
    assert expression in named, f"{problem}: issues name {named}"
    assert http_status(rejected.value.issues) == status


def test_every_problem_is_reported_at_once(program: Program) -> None:
    """A hospital fixing a referral sees all its problems in one answer, not one per attempt."""
    payload = submission(CORA)
    _service_request(payload).update(intent="proposal")
    _service_request(payload)["performer"][0]["identifier"].update(value="1234567893")
    with pytest.raises(UnusableReferral) as rejected:
        referral_from_fhir(payload, source_id="lakeside", program_org=program.organization)
    named = {e for issue in rejected.value.issues for e in issue.expression}
    assert {"ServiceRequest.intent", "ServiceRequest.performer"} <= named


def test_rejection_message_carries_no_patient_data(program: Program) -> None:
    """The exception text (which may reach logs) names codes and elements, never the patient's values."""
    payload = submission(ADA)
    _service_request(payload).update(authoredOn="Ada Testpatient 1984-02-29")
    with pytest.raises(UnusableReferral) as rejected:
        referral_from_fhir(payload, source_id="lakeside", program_org=program.organization)
    message = str(rejected.value) + " ".join(i.diagnostics or "" for i in rejected.value.issues)
    for value in ("Ada", "Testpatient", "1984-02-29", "SYN-MRN-0001"):
        assert value not in message
