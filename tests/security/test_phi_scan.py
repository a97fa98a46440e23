"""No plaintext PHI where it must not be: after a referral's lifecycle through the API (intake, acceptance,
discharge), no log line, no Temporal search attribute, no read-model column and no page a role may not see
holds the synthetic cast's names, birth dates, MRNs or phones; the search text ``q`` reaches neither a log line
nor the audit trail, and a signed-out visitor's way to sign-in does not carry it.

Real API (uvicorn, auth on, the loopback OpenID provider), worker, Temporal dev server and HAPI.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import create_engine, text
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment

from referral_service.store.database import sqlite_url
from tests.conftest import HAPI_SOURCE_ID
from tests.program_day import program_today
from tests.referrals import PATIENT_DATA, referral_bundle
from tests.security import surfaces
from tests.security.surfaces import ADA, FHIR_JSON, Stack

pytestmark = pytest.mark.timeout(300)
provider, stack = surfaces.provider, surfaces.stack  # the module's fixtures
# What an intake coordinator's view withholds (the chart and the contact): MRN, birth date, phone.
CHART_AND_CONTACT = ("SYN-MRN", "1984-02-29", "555-01")
SEARCHED = "Testpatient"  # a patient's family name, typed into the search box


def _found(words: tuple[str, ...], text: str) -> list[str]:
    return [word for word in words if word in text]


async def _rows(stack: Stack, key: str, until_phase: tuple[str, ...]) -> list[dict[str, Any]]:
    """The referral's read-model rows, every column, once the row has reached one of ``until_phase``."""
    engine = create_engine(sqlite_url(stack.database))
    deadline = time.monotonic() + 60
    try:
        while True:
            with engine.connect() as db:
                rows = [
                    dict(r._mapping) for r in db.execute(text("SELECT * FROM referrals WHERE key = :k"), {"k": key})
                ]
            if rows and rows[0]["phase"] in until_phase:
                return rows
            assert time.monotonic() < deadline, f"{key}: the row did not reach {until_phase}"
            await asyncio.sleep(0.3)
    finally:
        engine.dispose()


async def test_a_referrals_lifecycle_leaves_no_plaintext_phi_behind(
    stack: Stack, temporal_env: WorkflowEnvironment
) -> None:
    today = program_today()  # the program's day (New York), not UTC's
    bundle = referral_bundle(ADA, discharged_on=today - timedelta(days=2))
    hospital = stack.bearer("referring-system", source=HAPI_SOURCE_ID)
    coordinator, case_manager = stack.bearer("intake-coordinator"), stack.bearer("case-manager")
    pages: dict[tuple[str, str], str] = {}
    with capture_logs() as logs:
        async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
            created = await http.post("/fhir", json=bundle, headers=FHIR_JSON | hospital)
            assert created.status_code == 201, created.text
            key = created.json()["id"]
            accept = {"decision": "accept", "track_id": "adult-mh"}
            accepted = await http.post(f"/api/referrals/{key}/decision", json=accept, headers=coordinator)
            assert accepted.status_code == 200, accepted.text
            discharge = {"discharge": {"reason": "dropped_out", "date": today.isoformat()}}
            discharged = await http.post(f"/api/referrals/{key}/discharge", json=discharge, headers=case_manager)
            assert discharged.status_code == 200, discharged.text
            rows = await _rows(stack, key, ("closed", "aftercare"))
            phase = {"phase": rows[0]["phase"]}
            for path in ("/inbox", "/caseload", f"/referrals/{key}", "/api/referrals", f"/api/referrals/{key}"):
                for role, headers in (("intake-coordinator", coordinator), ("referring-system", hospital)):
                    answer = await http.get(path, headers=headers, params=phase if "api" in path else {})
                    pages[(role, path)] = answer.text

    coordinators_lists = await _coordinators_view_of(stack, key, rows[0]["phase"])
    assert "Testpatient" in coordinators_lists  # the name is there for her: the scan below can fail
    assert _found(CHART_AND_CONTACT, coordinators_lists) == []
    for (role, path), page in pages.items():
        withheld = CHART_AND_CONTACT if role == "intake-coordinator" else PATIENT_DATA
        assert _found(withheld, page) == [], f"{role} {path}"
    assert _found(PATIENT_DATA, str(logs)) == []
    assert key in str(logs)  # the capture saw the referral's events
    assert _found(PATIENT_DATA, str(rows)) == []
    assert rows[0]["person_sealed"]
    described = await temporal_env.client.get_workflow_handle(key).describe()
    attributes = {pair.key.name: pair.value for pair in described.typed_search_attributes}
    assert attributes["ReferralPhase"] in ("closed", "aftercare")
    assert _found(PATIENT_DATA, str(attributes)) == []


async def _coordinators_view_of(stack: Stack, key: str, phase: str) -> str:
    """The coordinator's list entry for the referral, found by the patient's name."""
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        listed = await http.get(
            "/api/referrals", params={"q": SEARCHED, "phase": phase}, headers=stack.bearer("intake-coordinator")
        )
    assert listed.status_code == 200, listed.text
    return str([row for row in listed.json() if row["key"] == key])


async def test_the_search_text_is_in_no_log_line_audit_row_or_sign_in_link(stack: Stack) -> None:
    key = await stack.submit(ADA)
    staff = stack.bearer("case-manager", sub="cm-searcher")
    with capture_logs() as logs:
        async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
            for path in ("/inbox", "/caseload", "/api/referrals"):
                answer = await http.get(path, params={"q": SEARCHED}, headers=staff)
                assert answer.status_code == 200, answer.text[:300]
            signed_out = await http.get("/inbox", params={"q": SEARCHED, "page": "2"})
            audit = await http.get("/api/audit", params={"user": "cm-searcher"}, headers=stack.bearer("program-admin"))

    assert audit.status_code == 200, audit.text
    trail = audit.json()
    assert {row["action"] for row in trail} >= {"GET /inbox", "GET /caseload", "GET /api/referrals"}
    assert _found((SEARCHED, "q="), str(trail)) == []
    assert any(event.get("event") == "audit" for event in logs)
    assert _found((SEARCHED, "q="), str(logs)) == []
    assert signed_out.status_code in (302, 303, 307), signed_out.text[:300]
    login = urlsplit(signed_out.headers["location"])
    assert login.path == "/auth/login"
    [back] = parse_qs(login.query)["next"]
    assert back == "/inbox?page=2"  # the rest of the page's address survives
    assert SEARCHED not in signed_out.headers["location"]
    assert key  # a referral the search could have found
