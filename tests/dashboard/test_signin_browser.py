"""Signing in to the dashboard in a real browser: headless Debian chromium (Playwright's driver) sent from
/inbox through the test OpenID provider and back, then screening from the inbox with the form's CSRF token.
Real API (uvicorn), worker, Temporal dev server and HAPI FHIR; every request stays on this machine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.async_api import expect
from temporalio.testing import WorkflowEnvironment

from referral_service.devstack.process import free_port
from referral_service.domain.referral import Identifier, referral_key
from referral_service.ehr.client import FhirClient
from tests.api_server import running_api
from tests.conftest import HAPI_SOURCE_ID
from tests.dashboard.test_dashboard_browser import ADA, browser, open_inbox_until, tab  # noqa: F401 (fixtures)
from tests.oidc_provider import INTAKE_COORDINATOR, OidcProvider, serving, sign_in_settings
from tests.referrals import referral_bundle

pytestmark = [pytest.mark.timeout(600)]


@dataclass
class SignInStack:
    url: str
    provider: OidcProvider


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with serving(OidcProvider(user=INTAKE_COORDINATOR)) as running:
        yield running


@pytest.fixture(scope="module")
async def stack(
    provider: OidcProvider, temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> AsyncIterator[SignInStack]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    auth = sign_in_settings(provider, url)
    async with running_api(temporal_env, hapi_base_url, hapi_client, queue_prefix="signin-ui", auth=auth, port=port):
        yield SignInStack(url, provider)


async def submit(stack: SignInStack) -> str:
    """Ada's referral from the hospital's referring system (its own bearer token); the referral id."""
    bundle = referral_bundle(ADA)
    [request] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
    token = stack.provider.access_token("referring-system", source=HAPI_SOURCE_ID)
    headers = {"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as hospital:
        response = await hospital.post("/fhir", json=bundle, headers=headers)
    assert response.status_code == 201, response.text
    placer = request["identifier"][0]
    return referral_key(HAPI_SOURCE_ID, Identifier(system=placer["system"], value=placer["value"]))


async def test_sign_in_from_the_inbox_then_waitlist_with_the_forms_csrf_token(stack, tab):  # noqa: F811
    page = tab.page
    key = await submit(stack)
    row = f'tr[data-referral="{key}"]'
    signed_in_before = len(stack.provider.token_requests)

    await page.goto(f"{stack.url}/inbox")

    assert page.url == f"{stack.url}/inbox"
    assert any(url.startswith(f"{stack.provider.base_url}/authorize?") for url in tab.requests), "sent to sign in"
    assert len(stack.provider.token_requests) == signed_in_before + 1
    await expect(page.locator("[data-signed-in-as]")).to_have_text(INTAKE_COORDINATOR.subject)
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    cookies = {cookie["name"]: cookie for cookie in await page.context.cookies(stack.url)}
    assert cookies["iop_session"]["httpOnly"]
    assert cookies["iop_session"]["sameSite"] == "Lax"

    await open_inbox_until(page, stack.url, f'{row}[data-phase="screening"]', present=True)
    waitlist = page.locator(row).locator("form.decision-waitlist")
    await waitlist.locator('input[name="csrf_token"]').evaluate("field => { field.value = 'forged'; }")
    async with page.expect_navigation() as refused:
        await waitlist.get_by_role("button", name="Waitlist").click()
    response = await refused.value
    assert response is not None
    assert response.status == 403
    await expect(page.locator("body")).to_contain_text("form is stale")

    await open_inbox_until(page, stack.url, f'{row}[data-phase="screening"]', present=True)
    async with page.expect_navigation():
        await page.locator(row).locator("form.decision-waitlist").get_by_role("button", name="Waitlist").click()

    assert page.url == f"{stack.url}/inbox"
    await expect(page.locator('[data-flash="notice"]')).to_contain_text(f"{key}: waitlist recorded")
    await open_inbox_until(page, stack.url, f'{row}[data-phase="waitlisted"]', present=True)

    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    assert "iop_session" not in {cookie["name"] for cookie in await page.context.cookies(stack.url)}
