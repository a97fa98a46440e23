"""Minimum necessary: each staff role reads the parts of a referral's snapshot its work needs (one definition,
``referral_service/api/role_views.py``), in the JSON API, the CLI's ``show`` (which prints that JSON) and the
dashboard's referral page; every answer carrying patient data says ``Cache-Control: no-store``.

Real API (uvicorn, auth on, the loopback OpenID provider), worker, Temporal dev server and HAPI; Ada's synthetic
referral (MRN ``SYN-MRN-…``, born 1984-02-29).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from referral_service.api.role_views import PATHS
from referral_service.domain.referral import HospitalDischarge, PatientDetails, Referral
from tests.conftest import HAPI_SOURCE_ID
from tests.security import surfaces
from tests.security.surfaces import Stack
from workflows.referral_types import ReferralState

pytestmark = pytest.mark.timeout(300)
provider, stack = surfaces.provider, surfaces.stack  # the module's fixtures
MRN, BORN = "SYN-MRN-0001", "1984-02-29"


@pytest.fixture(scope="module")
async def referral(stack: Stack) -> str:
    return await stack.submit()


async def _read(stack: Stack, path: str, *roles: str, **claims: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        return await http.get(path, headers=stack.bearer(*roles, **claims))


def test_every_snapshot_field_is_in_some_part() -> None:
    """Deny by default only works if every field is classified: a new one must be put in a part first."""
    classified = {path for paths in PATHS.values() for path in paths}
    nested: dict[str, type[BaseModel]] = {
        "": ReferralState,
        "referral.": Referral,
        "referral.patient.": PatientDetails,
        "referral.discharge.": HospitalDischarge,
    }
    fields = {
        prefix + name
        for prefix, model in nested.items()
        for name in model.model_fields
        if prefix + name + "." not in nested
    }
    assert fields - classified == set()


async def test_an_intake_coordinator_reads_what_screening_needs(stack: Stack, referral: str) -> None:
    answer = await _read(stack, f"/api/referrals/{referral}", "intake-coordinator")
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["cache-control"] == "no-store"
    seen: dict[str, Any] = answer.json()
    patient = seen["referral"]["patient"]
    assert patient["family"] == "Testpatient"
    assert patient["age"] >= 40
    assert {"birth_date", "identifiers", "ref"} & set(patient) == set()
    assert "encounter" not in seen["referral"]["discharge"]
    assert seen["referral"]["discharge"]["discharge_date"]  # screening reads the dates
    assert seen["referral"]["reasons"] or seen["referral"]["codes"]  # and why the patient was referred
    assert {"sessions", "assessments", "writes", "refused", "follow_ups"} & set(seen) == set()
    assert "coverage" not in seen["referral"]
    assert MRN not in answer.text
    assert BORN not in answer.text
    assert seen["view"]["withheld"] == ["care", "contact", "coverage", "ehr_writes", "record"]


@pytest.mark.parametrize("role", ["clinician", "case-manager"])
async def test_clinicians_and_case_managers_read_the_care_and_the_chart(stack: Stack, referral: str, role: str) -> None:
    answer = await _read(stack, f"/api/referrals/{referral}", role)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["cache-control"] == "no-store"
    seen = answer.json()
    assert seen["referral"]["patient"]["birth_date"] == BORN
    assert any(i["value"].startswith(MRN) for i in seen["referral"]["patient"]["identifiers"])
    assert {"sessions", "assessments", "writes", "team"} <= set(seen)
    assert "coverage" not in seen["referral"]
    assert seen["view"]["withheld"] == ["coverage"]


async def test_a_program_admin_reads_the_whole_snapshot(stack: Stack, referral: str) -> None:
    answer = await _read(stack, f"/api/referrals/{referral}", "program-admin")
    assert answer.status_code == 200, answer.text[:300]
    seen = answer.json()
    assert seen["view"]["withheld"] == []
    whole = ReferralState.model_validate(seen)  # every field there (the view and the age are additions)
    assert whole.referral.patient.birth_date is not None
    assert "coverage" in seen["referral"]


async def test_a_coordinators_decision_answers_in_the_coordinators_view(stack: Stack) -> None:
    key = await stack.submit()
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        answer = await http.post(
            f"/api/referrals/{key}/decision", json={"decision": "waitlist"}, headers=stack.bearer("intake-coordinator")
        )
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["cache-control"] == "no-store"
    assert MRN not in answer.text
    assert BORN not in answer.text
    assert answer.json()["phase"] == "waitlisted"


@pytest.mark.parametrize(
    ("role", "shows_chart"), [("intake-coordinator", False), ("case-manager", True), ("program-admin", True)]
)
async def test_the_referral_page_follows_the_same_view(stack: Stack, referral: str, role: str, shows_chart: bool):
    page = await _read(stack, f"/referrals/{referral}", role)
    assert page.status_code == 200, page.text[:300]
    assert page.headers["cache-control"] == "no-store"
    assert 'data-field="patient-name"' in page.text
    assert "Testpatient" in page.text
    assert (MRN in page.text, BORN in page.text) == (shows_chart, shows_chart)
    assert ('aria-labelledby="sessions-heading"' in page.text) == shows_chart
    assert ("data-withheld" in page.text) == (role != "program-admin")


@pytest.mark.parametrize("path", ["/inbox", "/caseload", "/api/referrals"])
async def test_lists_and_pages_are_not_stored(stack: Stack, referral: str, path: str) -> None:
    answer = await _read(stack, path, "case-manager")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"


async def test_the_referrers_task_is_not_stored(stack: Stack, referral: str) -> None:
    answer = await _read(stack, f"/fhir/Task/{referral}", "referring-system", source=HAPI_SOURCE_ID)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["cache-control"] == "no-store"
