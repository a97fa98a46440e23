"""People on the pages, per role, in a real browser (headless chromium) against the real API, worker, Temporal
and HAPI, signed in by bearer token: an intake coordinator recognises the patient on the inbox (name, sex, age)
and the referrer by name, without the chart or the phone; a case manager has the MRN and the phone on the
caseload and the referral page; the inbox's search box finds a patient by name and by order number and nothing
for another name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Locator, Page, expect
from temporalio.testing import WorkflowEnvironment

from referral_service.api.role_views import age_on
from referral_service.ehr.client import FhirClient
from tests.api_driver import Api
from tests.api_server import running_api
from tests.auth_tokens import auth_settings, token
from tests.conftest import HAPI_SOURCE_ID
from tests.dashboard.test_dashboard_browser import browser  # noqa: F401 (fixtures)
from tests.dashboard.test_my_day_browser import open_until, signed_in
from tests.program_day import program_today

pytestmark = [pytest.mark.timeout(600)]
ADA, MRN, PHONE, REFERRER = "Ada Testpatient", "SYN-MRN-0001-", "555-0142-101", "Dr. Harper Hospitalist"


@pytest.fixture(scope="module")
async def api_url(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient, tmp_path_factory
) -> AsyncIterator[str]:
    folder = tmp_path_factory.mktemp("people")
    async with running_api(
        temporal_env, hapi_base_url, hapi_client, queue_prefix="people", auth=auth_settings(folder)
    ) as url:
        yield url


@pytest.fixture(scope="module")
async def referrals(api_url: str) -> tuple[str, str, str]:
    """Two of Ada's referrals waiting for screening and one accepted (on the caseload)."""
    staff = token("referring-system", "program-admin", source=HAPI_SOURCE_ID, sub="admin-login")
    today = datetime.now(UTC).date()
    async with httpx.AsyncClient(base_url=api_url, timeout=180, headers=staff) as http:
        api = Api(http)
        waiting, other, accepted = [await api.submit(today - timedelta(days=1)) for _ in range(3)]
        await api.accept(accepted, "adult-mh")
    return waiting, other, accepted


def order_number(key: str) -> str:
    """The order number as the key spells it (``source.ORDER.hash``): what a coordinator reads off the order."""
    return key.split(".")[-2]


def person(page: Page, key: str, field: str) -> Locator:
    return page.locator(f'[data-referral="{key}"] [data-field="{field}"]')


async def test_an_intake_coordinator_recognises_the_patient_but_not_the_chart(api_url, browser, referrals):  # noqa: F811
    waiting, _, _ = referrals
    coordinator = await signed_in(browser, "intake-coordinator", subject="coordinator-login")
    await open_until(coordinator, f"{api_url}/inbox", [waiting])
    await expect(person(coordinator, waiting, "patient-name")).to_have_text(ADA)
    age = age_on(date(1984, 2, 29), program_today())
    await expect(person(coordinator, waiting, "patient")).to_contain_text(f"female, {age}")
    await expect(coordinator.locator(f'[data-referral="{waiting}"]')).to_contain_text(REFERRER)
    await expect(person(coordinator, waiting, "patient-mrn")).to_have_count(0)
    await expect(person(coordinator, waiting, "patient-phone")).to_have_count(0)
    assert MRN not in await coordinator.content()
    assert PHONE not in await coordinator.content()


async def test_a_case_manager_has_the_mrn_and_phone_on_the_caseload_and_referral_page(
    api_url,
    browser,  # noqa: F811
    referrals,
):
    _, _, accepted = referrals
    manager = await signed_in(browser, "case-manager", subject="manager-login")
    await open_until(manager, f"{api_url}/caseload", [accepted])
    await expect(person(manager, accepted, "patient-name")).to_have_text(ADA)
    await expect(person(manager, accepted, "patient-mrn")).to_contain_text(MRN)
    await expect(person(manager, accepted, "patient-phone")).to_have_text(PHONE)

    await manager.locator(f'[data-referral="{accepted}"]').get_by_role("link", name=accepted).click()
    await manager.wait_for_url(f"{api_url}/referrals/{accepted}")
    await expect(manager.locator('[data-field="patient-name"]')).to_have_text(ADA)
    await expect(manager.locator('[data-field="patient-phone"]')).to_have_text(PHONE)
    await expect(manager.locator('[data-field="patient-identifiers"]')).to_contain_text(MRN)


async def test_the_inbox_search_finds_a_patient_by_name_and_by_order_number(api_url, browser, referrals):  # noqa: F811
    waiting, other, _ = referrals
    coordinator = await signed_in(browser, "intake-coordinator", subject="coordinator-login")
    await open_until(coordinator, f"{api_url}/inbox", [waiting, other])
    search = coordinator.get_by_label("Patient name or order number")

    await search.fill("ada")
    await coordinator.get_by_role("button", name="Search").click()
    await expect(coordinator.locator(f'[data-referral="{waiting}"]')).to_be_visible()
    await expect(coordinator.locator(f'[data-referral="{other}"]')).to_be_visible()

    await search.fill(order_number(waiting))
    await coordinator.get_by_role("button", name="Search").click()
    await expect(coordinator.locator(f'[data-referral="{waiting}"]')).to_be_visible()
    await expect(coordinator.locator(f'[data-referral="{other}"]')).to_have_count(0)

    await search.fill("Nobodyatall")
    await coordinator.get_by_role("button", name="Search").click()
    await expect(coordinator.get_by_text("No waiting referral matches the search.")).to_be_visible()
    await expect(coordinator.locator("[data-referral]")).to_have_count(0)
    await expect(search).to_have_value("Nobodyatall")
