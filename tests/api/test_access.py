"""Who may do what: bearer tokens (JWTs from the configured issuer) and roles, on the real app.

Tokens are signed with an RSA key made in ``tests/auth_tokens.py``, published to the app as a JWKS file;
Temporal is the real dev server (the refusals never reach it, the allowed calls do) and HAPI the real test
server.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from referral_service.api.access import POLICY, PUBLIC
from referral_service.api.app import ROUTERS, create_app
from referral_service.config import Settings
from referral_service.domain.referral import Identifier, referral_key
from referral_service.ehr.client import FhirClient
from referral_service.worker import create_worker
from tests.api_server import service_settings
from tests.auth_tokens import STRANGER_KEY, auth_settings, token
from tests.conftest import HAPI_SOURCE_ID
from tests.referrals import referral_bundle

OTHER_SOURCE = "county-general"
FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def settings(tmp_path: Path, hapi_base_url: str) -> Settings:
    base = service_settings(hapi_base_url, "access", HAPI_SOURCE_ID, OTHER_SOURCE)
    return base.model_copy(update={"auth": auth_settings(tmp_path)})


@pytest.fixture
async def api(settings: Settings, temporal_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, temporal_env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def _placer_key(bundle: dict[str, Any], source: str) -> str:
    [request] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
    identifier = request["identifier"][0]
    return referral_key(source, Identifier(system=identifier["system"], value=identifier["value"]))


def test_every_route_has_an_access_rule() -> None:
    """A new endpoint cannot ship without saying who may call it (unlisted routes are refused anyway)."""
    routes = {(m, r.path) for router in ROUTERS for r in router.routes if isinstance(r, APIRoute) for m in r.methods}
    assert ("POST", "/fhir") in routes
    assert routes - PUBLIC - set(POLICY) == set()
    assert set(POLICY) - routes == set(), "rules for routes that no longer exist"


async def test_health_and_metadata_need_no_token(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).status_code == 200
    assert (await api.get("/fhir/metadata")).status_code == 200


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param({}, "bearer token is required", id="no-token"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, "bearer token is required", id="basic-auth"),
        pytest.param(token("case-manager", exp=int(time.time()) - 3600), "expired", id="expired"),
        pytest.param(token("case-manager", aud="another-service"), "InvalidAudienceError", id="wrong-audience"),
        pytest.param(token("case-manager", iss="https://evil.example"), "InvalidIssuerError", id="wrong-issuer"),
        pytest.param(token("case-manager", key=STRANGER_KEY), "InvalidSignatureError", id="forged-signature"),
        pytest.param(token("case-manager", program="another-program"), "not for program", id="other-program"),
    ],
)
async def test_a_token_that_is_missing_or_not_ours_gets_401(
    api: httpx.AsyncClient, headers: dict[str, str], reason: str
) -> None:
    response = await api.get("/api/referrals", headers=headers)

    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert reason in response.json()["detail"]


async def test_roles_decide_who_may_screen_and_who_may_list(api: httpx.AsyncClient) -> None:
    unknown = f"hapi-test~nobody-{uuid.uuid4().hex[:8]}"
    decision = {"decision": "waitlist"}

    clinician = await api.post(f"/api/referrals/{unknown}/decision", json=decision, headers=token("clinician"))
    referrer = await api.get("/api/referrals", headers=token("referring-system", source=HAPI_SOURCE_ID))
    coordinator = await api.post(
        f"/api/referrals/{unknown}/decision", json=decision, headers=token("intake-coordinator")
    )
    listing = await api.get("/api/referrals", headers=token("case-manager"))

    assert clinician.status_code == 403
    assert "intake-coordinator" in clinician.json()["detail"]
    assert referrer.status_code == 403
    assert coordinator.status_code == 404, coordinator.text  # let in: the referral just does not exist
    assert listing.status_code == 200, listing.text


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("intake-coordinator", False), ("clinician", False), ("case-manager", True), ("program-admin", True)],
)
async def test_case_managers_and_program_admins_reassign_care_teams(api: httpx.AsyncClient, role: str, allowed: bool):
    """The API route and the dashboard's form alike; the others are told which roles may."""
    unknown = f"hapi-test~nobody-{uuid.uuid4().hex[:8]}"
    body = {"members": {"primary_therapist": "lmft-chen"}}

    by_api = await api.post(f"/api/referrals/{unknown}/team", json=body, headers=token(role))
    by_form = await api.post(
        f"/referrals/{unknown}/team", data={"role": "primary_therapist", "member": "lmft-chen"}, headers=token(role)
    )

    if allowed:  # let in: the referral just does not exist
        assert (by_api.status_code, by_api.json()["detail"]) == (404, "no such referral")
        assert by_form.status_code == 303
    else:
        for response in (by_api, by_form):
            assert response.status_code == 403
            assert response.json()["detail"] == "this needs one of the roles: case-manager, program-admin"


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("intake-coordinator", False), ("clinician", True), ("case-manager", True), ("program-admin", True)],
)
async def test_care_staff_retry_the_writes_the_ehr_refused(api: httpx.AsyncClient, role: str, allowed: bool):
    """The API route and the dashboard's button alike."""
    unknown = f"hapi-test~nobody-{uuid.uuid4().hex[:8]}"

    by_api = await api.post(f"/api/referrals/{unknown}/retry-writes", headers=token(role))
    by_form = await api.post(f"/referrals/{unknown}/retry-writes", headers=token(role))

    if allowed:  # let in: the referral just does not exist
        assert (by_api.status_code, by_api.json()["detail"]) == (404, "no such referral")
        assert by_form.status_code == 303
    else:
        for response in (by_api, by_form):
            assert response.status_code == 403
            assert response.json()["detail"] == "this needs one of the roles: case-manager, clinician, program-admin"


async def test_fhir_callers_get_operation_outcomes_and_staff_may_not_submit(api: httpx.AsyncClient) -> None:
    bundle = referral_bundle("ada-testpatient-adult-inpatient")

    anonymous = await api.post("/fhir", json=bundle, headers=FHIR_JSON)
    staff = await api.post("/fhir", json=bundle, headers=FHIR_JSON | token("case-manager"))

    assert anonymous.status_code == 401
    assert [i["code"] for i in anonymous.json()["issue"]] == ["login"]
    assert staff.status_code == 403
    assert [i["code"] for i in staff.json()["issue"]] == ["forbidden"]


async def test_a_referring_system_submits_and_reads_only_for_its_own_source(
    api: httpx.AsyncClient, settings: Settings, temporal_env: WorkflowEnvironment, hapi_client: FhirClient
) -> None:
    """The token names the hospital's source: it submits as that source and cannot see another's referrals."""
    ours = referral_bundle("ada-testpatient-adult-inpatient")
    spoofed = referral_bundle("ada-testpatient-adult-inpatient")
    hospital = token("referring-system", source=HAPI_SOURCE_ID)
    neighbour = token("referring-system", source=OTHER_SOURCE)

    created = await api.post("/fhir", json=ours, headers=FHIR_JSON | hospital)
    pretending = await api.post(
        "/fhir", json=spoofed, headers=FHIR_JSON | neighbour | {"X-Referral-Source": HAPI_SOURCE_ID}
    )

    assert created.status_code == 201, created.text
    assert created.json()["id"] == _placer_key(ours, HAPI_SOURCE_ID)
    assert pretending.status_code == 403, pretending.text
    with pytest.raises(RPCError) as missing:
        await temporal_env.client.get_workflow_handle(_placer_key(spoofed, HAPI_SOURCE_ID)).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND

    task_url = f"/fhir/Task/{created.json()['id']}"
    async with create_worker(temporal_env.client, settings.task_queue, {HAPI_SOURCE_ID: hapi_client}):
        own = await api.get(task_url, headers=hospital)
        other = await api.get(task_url, headers=neighbour)
    assert own.status_code == 200, own.text
    assert other.status_code == 404, other.text


async def test_only_program_admins_may_read_the_audit_trail(api: httpx.AsyncClient) -> None:
    """Everyone's steps are on it: beyond what any one role's screens show."""
    staff = ("intake-coordinator", "clinician", "case-manager")
    referrer = token("referring-system", source=HAPI_SOURCE_ID)
    refused = [(await api.get("/api/audit", headers=token(role))).status_code for role in staff]
    admin = await api.get("/api/audit", headers=token("program-admin"))

    assert refused == [403, 403, 403]
    assert (await api.get("/api/audit", headers=referrer)).status_code == 403
    assert admin.status_code == 200, admin.text
