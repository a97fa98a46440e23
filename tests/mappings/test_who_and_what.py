"""Who a referral is for and whether it is a referral at all: the pure judgement intake runs once the EHR has
answered (the real-world corpus runs the same rules end to end against HAPI)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings.ehr_lookups import FoundInEhr
from fhir_mappings.intake_answer import task_with_warnings
from fhir_mappings.outcomes import OutcomeIssue
from fhir_mappings.performer import Addressed, Addressee, addressed_to, performer_lookups
from fhir_mappings.referral_in import IntakeRules, lookups_for, referrals_from_fhir
from fhir_mappings.referral_kind import kind_issue
from fhir_mappings.resolve import ResourceIndex, context_base, local_reference
from fhir_mappings.submission import read_submission
from referral_service.domain.program import ReferralCodes
from referral_service.domain.referral import Identifier

NPI = "http://hl7.org/fhir/sid/us-npi"
OURS = Addressee((Identifier(system=NPI, value="1999999984"),), ("Organization/iop",))
BASE = "https://ehr.example.org/fhir"


def _org(npi: str) -> dict[str, Any]:
    return {"resourceType": "Organization", "id": "o", "identifier": [{"system": NPI, "value": npi}]}


def _verdict(performer: list[dict[str, Any]], *, held: dict[str, Any] | None = None, contained=()) -> Addressed:
    request = {"resourceType": "ServiceRequest", "performer": performer, "contained": list(contained)}
    index = ResourceIndex()
    for resource in contained:
        index.add(resource, f"#{resource['id']}")
    return addressed_to(request, index, FoundInEhr(held=held or {}), OURS, BASE)


@pytest.mark.parametrize(
    ("performer", "held", "contained", "verdict"),
    [
        ([{"identifier": {"system": NPI, "value": "1999999984"}}], None, (), Addressed.PROGRAM),
        ([{"reference": "Organization/iop"}], None, (), Addressed.PROGRAM),  # the EHR's reference for the program
        ([{"reference": f"{BASE}/Organization/7"}], {"Organization/7": _org("1999999984")}, (), Addressed.PROGRAM),
        ([{"reference": "Organization/7"}], {"Organization/7": _org("1234567893")}, (), Addressed.ELSEWHERE),
        ([{"reference": "Organization/7"}], {"Organization/7": None}, (), Addressed.UNKNOWN),  # not held: can't tell
        ([{"reference": "#o"}], None, (_org("1234567893"),), Addressed.ELSEWHERE),
        ([{"identifier": {"system": NPI, "value": "1234567893"}}], None, (), Addressed.ELSEWHERE),
        ([], None, (), Addressed.NONE),
        (  # BSeR: a PractitionerRole, judged by the organization it works for
            [{"reference": "#role"}],
            None,
            ({"resourceType": "PractitionerRole", "id": "role", "organization": {"reference": "Organization/iop"}},),
            Addressed.PROGRAM,
        ),
        (  # one performer naming the program is enough
            [{"identifier": {"system": NPI, "value": "1234567893"}}, {"reference": "Organization/iop"}],
            None,
            (),
            Addressed.PROGRAM,
        ),
    ],
)
def test_a_performer_is_resolved_before_it_is_judged(performer, held, contained, verdict) -> None:
    assert _verdict(performer, held=held, contained=contained) == verdict


def test_a_literal_performer_and_its_roles_organization_are_read_from_the_ehr() -> None:
    request = {"resourceType": "ServiceRequest", "performer": [{"reference": "PractitionerRole/r"}]}
    first = performer_lookups(request, ResourceIndex(), FoundInEhr(), BASE)
    assert first.reads == {"PractitionerRole/r"}
    role = {"resourceType": "PractitionerRole", "id": "r", "organization": {"reference": "Organization/9"}}
    second = performer_lookups(request, ResourceIndex(), FoundInEhr(held={"PractitionerRole/r": role}), BASE)
    assert second.reads == {"Organization/9"}


@pytest.mark.parametrize(
    ("code", "category", "refused"),
    [
        ({"coding": [{"system": "http://loinc.org", "code": "24323-8"}]}, None, True),  # a lab panel
        (None, [{"coding": [{"system": "http://snomed.info/sct", "code": "108252007"}]}], True),  # lab category
        ({"coding": [{"system": "http://snomed.info/sct", "code": "304253006"}]}, None, True),  # DNR
        ({"coding": [{"system": "http://snomed.info/sct", "code": "390866009"}]}, None, False),
        ({"coding": [{"system": "http://example.org/local", "code": "IOP"}]}, None, False),  # unknown: taken
        ({"text": "IOP referral"}, None, False),
        (None, None, False),
    ],
)
def test_only_orders_plainly_not_referrals_are_refused(code, category, refused) -> None:
    request = {"resourceType": "ServiceRequest", **({"code": code} if code else {})}
    if category:
        request["category"] = category
    issue = kind_issue(request, ReferralCodes())
    assert (issue is not None) == refused
    assert issue is None or issue.expression == ["ServiceRequest.code"]


def test_relative_references_resolve_against_their_entrys_base() -> None:
    assert local_reference("Patient/1", BASE, context_base(f"{BASE}/ServiceRequest/s", BASE)) == "Patient/1"
    assert local_reference("Patient/1", BASE, context_base("http://example.org/fhir/ServiceRequest/s", BASE)) is None
    assert local_reference("Patient/1", BASE, context_base("urn:uuid:0e1f", BASE)) == "Patient/1"
    assert local_reference(f"{BASE}/Patient/1", BASE) == "Patient/1"
    assert local_reference("#p", BASE) is None


def _bundle(patient_full_url: str, subject: str) -> dict[str, Any]:
    patient = {
        "resourceType": "Patient",
        "id": "1",
        "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1"}],
    }
    request = {
        "resourceType": "ServiceRequest",
        "identifier": [{"value": "ORDER-1"}],  # no system, as US Core and BSeR publish them
        "status": "active",
        "intent": "order",
        "subject": {"reference": subject},
    }
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": patient_full_url, "resource": patient},
            {"fullUrl": "urn:uuid:5f2a", "resource": request},
        ],
    }


def test_a_patient_from_another_server_is_linked_by_identifier_never_by_its_id() -> None:
    """The wrong-patient write: Patient/1 on another server is not the EHR's Patient/1."""
    submission = read_submission(
        _bundle("http://other.example.org/fhir/Patient/1", "http://other.example.org/fhir/Patient/1")
    )
    rules = IntakeRules(source_id="ehr", source_base_url=BASE)
    wanted = lookups_for(submission, rules, FoundInEhr())
    assert ("Patient", "urn:oid:1.2.3|MRN-1") in wanted.searches
    assert not any(read.startswith("Patient/") for read in wanted.reads)

    one = FoundInEhr(matches={("Patient", "urn:oid:1.2.3|MRN-1"): ("pat-77",)})
    [linked] = referrals_from_fhir(submission, rules, found=one).referrals
    assert (linked.patient.ref.id, linked.placer_identifier) == ("pat-77", Identifier(value="ORDER-1"))

    none = FoundInEhr(matches={("Patient", "urn:oid:1.2.3|MRN-1"): ()})
    taken = referrals_from_fhir(submission, rules, found=none)
    assert taken.referrals[0].patient.ref.id is None
    assert ["ServiceRequest.subject"] in [w.expression for w in taken.warnings]


def test_warnings_ride_on_the_task_as_a_contained_outcome_it_references() -> None:
    task = {
        "resourceType": "Task",
        "status": "received",
        "intent": "order",
        "for": {"type": "Patient", "identifier": {"value": "MRN-1"}},
    }
    warned = task_with_warnings(task, [OutcomeIssue(severity="warning", code="not-found", diagnostics="d")])
    assert warned["contained"][0]["resourceType"] == "OperationOutcome"
    assert warned["output"][0]["valueReference"] == {"reference": f"#{warned['contained'][0]['id']}"}
    assert task_with_warnings(task, []) is task


def test_the_requester_is_named_after_the_practitioner_and_organisation_the_bundle_carries() -> None:
    """Staff read who referred (a person, an organisation), not an id; a display the sender gave stays when the
    Bundle carries no resource to name it."""
    bundle = _bundle("urn:uuid:0e1f", "urn:uuid:0e1f")
    request = bundle["entry"][1]["resource"]
    request["requester"] = {"reference": "urn:uuid:role"}
    bundle["entry"] += [
        {
            "fullUrl": "urn:uuid:role",
            "resource": {
                "resourceType": "PractitionerRole",
                "practitioner": {"reference": "urn:uuid:doc"},
                "organization": {"reference": "urn:uuid:org", "display": "old name"},
            },
        },
        {
            "fullUrl": "urn:uuid:doc",
            "resource": {"resourceType": "Practitioner", "name": [{"prefix": ["Dr."], "given": ["Mo"], "family": "A"}]},
        },
        {"fullUrl": "urn:uuid:org", "resource": {"resourceType": "Organization", "name": "Lakeside Hospital"}},
    ]
    rules = IntakeRules(source_id="ehr", source_base_url=BASE)
    [named] = referrals_from_fhir(read_submission(bundle), rules, found=FoundInEhr()).referrals
    names = [ref.display if ref else None for ref in (named.requester, named.requester_organization)]
    assert names == ["Dr. Mo A", "Lakeside Hospital"]

    request["requester"] = {"reference": "Practitioner/elsewhere", "display": "Dr. Given Display"}
    [displayed] = referrals_from_fhir(read_submission(bundle), rules, found=FoundInEhr()).referrals
    assert displayed.requester is not None
    assert displayed.requester.display == "Dr. Given Display"
