"""Dashboard sign-in through a real OpenID provider (``tests/oidc_provider.py``) against the real API.

Every hop is an HTTP request on loopback, followed by hand (httpx, no redirects followed) so each answer can be
read: the dashboard page, ``/auth/login``, the provider's authorization endpoint, ``/auth/callback`` and back.
Temporal (the dev server) and HAPI are real; referrals come in through ``POST /fhir`` with a referring
system's token from the same provider.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment

from referral_service.api.app import create_app
from referral_service.devstack.process import free_port
from referral_service.domain.referral import Identifier, referral_key
from referral_service.ehr.client import FhirClient
from tests.api_server import running_api, service_settings
from tests.conftest import HAPI_SOURCE_ID
from tests.oidc_provider import (
    CASE_MANAGER,
    CLIENT_ID,
    INTAKE_COORDINATOR,
    OidcProvider,
    StaffUser,
    serving,
    sign_in_settings,
)
from tests.referrals import referral_bundle

ADA = "ada-testpatient-adult-inpatient"
NO_ROLES = StaffUser("nora.no-roles", ())
REFERRING_SYSTEM = StaffUser("county-ehr", ("referring-system",))
REGISTERED_SECRET = "dashboard-secret-1"  # noqa: S105 - the test provider's, for a confidential client
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class SignedInApi:
    url: str
    provider: OidcProvider


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with serving(OidcProvider()) as running:
        yield running


@pytest.fixture(scope="module")
async def service(
    provider: OidcProvider, temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> AsyncIterator[SignedInApi]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    auth = sign_in_settings(provider, url)
    async with running_api(temporal_env, hapi_base_url, hapi_client, queue_prefix="signin", auth=auth, port=port):
        yield SignedInApi(url, provider)


@pytest.fixture
async def browser(service: SignedInApi) -> AsyncIterator[httpx.AsyncClient]:
    """A browser's cookie jar, following no redirects by itself; the provider back to defaults."""
    service.provider.user = CASE_MANAGER
    service.provider.access_lifetime = 300
    async with httpx.AsyncClient(base_url=service.url, timeout=60, follow_redirects=False) as client:
        yield client


async def sign_in(browser: httpx.AsyncClient, start: str = "/inbox") -> httpx.Response:
    """From a dashboard page through the provider and back; the callback's answer."""
    page = await browser.get(start)
    assert page.status_code == 303, page.text
    login = await browser.get(page.headers["location"])
    assert login.status_code == 303, login.text
    approved = await browser.get(login.headers["location"])
    assert approved.status_code == 302, approved.text
    return await browser.get(approved.headers["location"])


async def csrf_token(browser: httpx.AsyncClient, page: str = "/inbox") -> str:
    response = await browser.get(page)
    assert response.status_code == 200, response.text
    found = CSRF.search(response.text)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def set_cookie(response: httpx.Response, name: str) -> str:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    return header


async def submit(service: SignedInApi) -> str:
    """Ada's referral, sent by the hospital's referring system with its own token; the referral id."""
    bundle = referral_bundle(ADA)
    [request] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
    token = service.provider.access_token("referring-system", source=HAPI_SOURCE_ID)
    headers = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as hospital:
        response = await hospital.post("/fhir", json=bundle, headers=headers)
    assert response.status_code == 201, response.text
    placer = request["identifier"][0]
    return referral_key(HAPI_SOURCE_ID, Identifier(system=placer["system"], value=placer["value"]))


async def test_signing_in_with_pkce_lands_on_the_page_asked_for(browser, service):
    page = await browser.get("/referrals/some-referral?view=full")
    assert page.status_code == 303
    assert page.headers["location"] == "/auth/login?next=%2Freferrals%2Fsome-referral%3Fview%3Dfull"

    login = await browser.get("/auth/login?next=/inbox")
    authorization = urlsplit(login.headers["location"])
    asked = {name: values[0] for name, values in parse_qs(authorization.query).items()}
    endpoint = f"{authorization.scheme}://{authorization.netloc}{authorization.path}"
    assert endpoint == f"{service.provider.base_url}/authorize"
    assert asked["response_type"] == "code"
    assert asked["client_id"] == CLIENT_ID
    assert asked["redirect_uri"] == f"{service.url}/auth/callback"
    assert "openid" in asked["scope"].split()
    assert asked["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", asked["code_challenge"])
    assert asked["state"]
    assert asked["nonce"]
    attempt = set_cookie(login, "iop_signin")
    assert "HttpOnly" in attempt
    assert "Path=/auth" in attempt
    assert "samesite=lax" in attempt.lower()
    for secret in (asked["state"], asked["nonce"]):
        assert secret not in attempt, "the attempt cookie is sealed"

    approved = await browser.get(login.headers["location"])
    back = await browser.get(approved.headers["location"])

    assert back.status_code == 303, back.text
    assert back.headers["location"] == "/inbox"
    session = set_cookie(back, "iop_session")
    assert "HttpOnly" in session
    assert "Path=/" in session
    assert "samesite=lax" in session.lower()
    assert "Secure" not in session  # plain http on loopback; Secure everywhere else
    max_age = int(re.search(r"Max-Age=(\d+)", session).group(1))
    assert 0 < max_age <= service.provider.access_lifetime
    [redeemed] = service.provider.token_requests[-1:]
    assert redeemed["code_verifier"], "the code was redeemed with the PKCE verifier"
    assert redeemed["code"] not in session

    inbox = await browser.get("/inbox")
    assert inbox.status_code == 200
    assert CASE_MANAGER.subject in inbox.text
    assert "Sign out" in inbox.text


async def test_a_callback_with_another_state_is_refused_and_the_code_never_redeemed(browser, service):
    login = await browser.get("/auth/login?next=/inbox")
    approved = await browser.get(login.headers["location"])
    callback = urlsplit(approved.headers["location"])
    forged = re.sub(r"state=[^&]+", "state=someone-elses-state", callback.query)
    redeemed_before = len(service.provider.token_requests)

    refused = await browser.get(f"{callback.path}?{forged}")

    assert refused.status_code == 400
    assert "state does not match" in refused.text
    assert "iop_session" not in refused.headers.get("set-cookie", "")
    assert len(service.provider.token_requests) == redeemed_before
    assert (await browser.get("/inbox")).status_code == 303, "still not signed in"


async def test_a_stolen_code_cannot_be_redeemed_with_another_browsers_verifier(browser, service):
    """PKCE: a code issued to the victim's sign-in, brought to the attacker's own (its state, its verifier),
    is refused by the provider, and the attacker gets no session."""
    victim_login = await browser.get("/auth/login?next=/inbox")
    victim_back = urlsplit((await browser.get(victim_login.headers["location"])).headers["location"])
    stolen_code = parse_qs(victim_back.query)["code"][0]

    async with httpx.AsyncClient(base_url=service.url, timeout=60) as attacker:
        own_login = await attacker.get("/auth/login?next=/inbox")
        own_state = parse_qs(urlsplit(own_login.headers["location"]).query)["state"][0]
        refused = await attacker.get("/auth/callback", params={"code": stolen_code, "state": own_state})
        still_out = await attacker.get("/inbox")

    assert refused.status_code == 400, refused.text
    assert "refused the sign-in (invalid_grant)" in refused.text
    assert service.provider.refusals[-1] == "code_verifier does not match the code_challenge"
    assert stolen_code not in refused.text
    assert "iop_session" not in refused.headers.get("set-cookie", "")
    assert still_out.status_code == 303


async def test_an_expired_session_is_sent_to_sign_in_again(browser, service):
    service.provider.access_lifetime = 8
    back = await sign_in(browser)
    assert back.status_code == 303, back.text
    kept = browser.cookies["iop_session"]
    assert (await browser.get("/inbox")).status_code == 200

    await asyncio.sleep(9)

    again = await browser.get("/inbox")
    assert again.status_code == 303
    assert again.headers["location"] == "/auth/login?next=%2Finbox"
    async with httpx.AsyncClient(base_url=service.url, cookies={"iop_session": kept}) as replaying:
        replayed = await replaying.get("/inbox")  # a copy of the cookie kept past its expiry
    assert replayed.status_code == 303


async def test_an_id_token_from_another_sign_in_is_refused(browser, service):
    """The id_token must carry this sign-in's nonce: one replayed from another sign-in starts no session."""
    service.provider.replayed_nonce = "a-nonce-from-another-sign-in"
    try:
        refused = await sign_in(browser)
    finally:
        service.provider.replayed_nonce = None

    assert refused.status_code == 403
    assert "nonce does not match" in refused.text
    assert "iop_session" not in refused.headers.get("set-cookie", "")


@pytest.mark.parametrize("user", [NO_ROLES, REFERRING_SYSTEM], ids=["no-roles", "referring-system"])
async def test_an_account_without_a_staff_role_is_told_so_and_not_signed_in(browser, service, user):
    service.provider.user = user

    refused = await sign_in(browser)

    assert refused.status_code == 403
    assert "none of the dashboard&#39;s roles" in refused.text
    assert (await browser.get("/inbox")).status_code == 303


async def test_declining_at_the_provider_says_so_and_signs_no_one_in(browser, service):
    service.provider.deny = True
    try:
        refused = await sign_in(browser)
    finally:
        service.provider.deny = False

    assert refused.status_code == 400
    assert "did not sign you in (access_denied)" in refused.text
    assert (await browser.get("/inbox")).status_code == 303


async def test_an_unreachable_provider_is_a_page_saying_so(hapi_base_url, temporal_env: WorkflowEnvironment):
    gone = OidcProvider(base_url=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    settings = service_settings(hapi_base_url, "no-provider").model_copy(
        update={"auth": sign_in_settings(gone, "http://127.0.0.1:8000")}
    )
    app = create_app(settings, temporal_env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as api:
        page = await api.get("/inbox")
        login = await api.get(page.headers["location"])

    assert page.status_code == 303
    assert login.status_code == 502
    assert "identity provider cannot be reached" in login.text


async def test_sign_out_needs_the_pages_csrf_token_and_forgets_the_session(browser, service):
    await sign_in(browser)
    token = await csrf_token(browser)

    forged = await browser.post("/auth/logout", data={})
    assert forged.status_code == 403
    assert (await browser.get("/inbox")).status_code == 200, "still signed in"

    signed_out = await browser.post("/auth/logout", data={"csrf_token": token})
    assert signed_out.status_code == 200
    assert "Signed out" in signed_out.text
    assert re.search(r'iop_session=""?;.*Max-Age=0', set_cookie(signed_out, "iop_session"))
    assert (await browser.get("/inbox")).status_code == 303


async def test_an_intake_coordinator_signed_in_may_screen_but_not_discharge(browser, service):
    key = await submit(service)
    service.provider.user = INTAKE_COORDINATOR
    await sign_in(browser)
    token = await csrf_token(browser)

    discharge = await browser.post(
        f"/referrals/{key}/discharge", data={"csrf_token": token, "reason": "completed", "date": "2026-12-01"}
    )
    waitlist = await browser.post(f"/referrals/{key}/decision", data={"csrf_token": token, "decision": "waitlist"})

    assert discharge.status_code == 403
    assert "this needs one of the roles" in discharge.json()["detail"]
    assert waitlist.status_code == 303, waitlist.text
    assert waitlist.headers["location"] == "/inbox"
    page = await browser.get(f"/referrals/{key}")
    assert 'data-field="phase">waitlisted<' in page.text


async def test_a_form_without_this_sessions_csrf_token_is_refused(browser, service):
    key = await submit(service)
    await sign_in(browser)
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as other:
        await sign_in(other)
        others_token = await csrf_token(other)

    missing = await browser.post(f"/referrals/{key}/cancel", data={"reason": "duplicate referral"})
    foreign = await browser.post(
        f"/referrals/{key}/cancel", data={"reason": "duplicate referral", "csrf_token": others_token}
    )

    honoured = await browser.post(
        f"/referrals/{key}/cancel", data={"reason": "duplicate referral", "csrf_token": await csrf_token(browser)}
    )

    for refused in (missing, foreign):
        assert refused.status_code == 403
        assert "form is stale" in refused.json()["detail"]
    assert honoured.status_code == 303, honoured.text
    assert honoured.headers["location"] == f"/referrals/{key}"


async def test_the_json_api_takes_the_header_and_never_the_session_cookie(browser, service):
    await sign_in(browser)

    by_cookie = await browser.get("/api/referrals")
    by_header = await browser.get(
        "/api/referrals", headers={"Authorization": f"Bearer {service.provider.access_token('case-manager')}"}
    )

    assert by_cookie.status_code == 401
    assert by_cookie.headers["WWW-Authenticate"].startswith("Bearer")
    assert by_header.status_code == 200, by_header.text


async def test_sign_in_logs_name_no_code_token_or_verifier(browser, service):
    with capture_logs() as logs:
        await sign_in(browser)
        await browser.get("/auth/callback", params={"code": "junk-code", "state": "junk-state"})
    [redeemed] = service.provider.token_requests[-1:]
    secrets = [redeemed["code"], redeemed["code_verifier"], "junk-code", "junk-state"]
    text = repr(logs)
    assert "dashboard sign-in" in text
    assert not [secret for secret in secrets if secret in text]


async def test_without_an_issuer_the_dashboard_is_the_development_modes_local_user(
    hapi_base_url, temporal_env: WorkflowEnvironment
):
    """The development mode: no sign-in, every staff role, on loopback only (the settings refuse it elsewhere)."""
    app = create_app(service_settings(hapi_base_url, "devmode"), temporal_env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as local:
        inbox = await local.get("/inbox")
        login = await local.get("/auth/login")

    assert inbox.status_code == 200
    assert "Sign out" not in inbox.text
    assert login.status_code == 404


@pytest.mark.parametrize(
    ("secret", "lands"), [(REGISTERED_SECRET, 303), ("not-the-registered-one", 400)], ids=["right", "wrong"]
)
async def test_a_confidential_client_authenticates_with_its_secret(
    provider, hapi_base_url, temporal_env: WorkflowEnvironment, secret, lands
):
    provider.client_secret = REGISTERED_SECRET
    try:
        auth = sign_in_settings(provider, "http://127.0.0.1:8000").model_copy(
            update={"dashboard_client_secret": SecretStr(secret)}
        )
        settings = service_settings(hapi_base_url, "confidential").model_copy(update={"auth": auth})
        app = create_app(settings, temporal_env.client)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as api,
            httpx.AsyncClient() as to_provider,
        ):
            login = await api.get("/auth/login?next=/inbox")
            approved = await to_provider.get(login.headers["location"])
            back = await api.get(approved.headers["location"])
    finally:
        provider.client_secret = None

    assert back.status_code == lands, back.text
    assert ("iop_session" in back.headers.get("set-cookie", "")) == (lands == 303)
    if lands == 400:
        assert "refused the sign-in (invalid_client)" in back.text
        assert secret not in back.text
