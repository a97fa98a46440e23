"""The dashboard in a real browser: headless Debian chromium (Playwright's driver, never `playwright install`)
against the real API (uvicorn, in this process), a worker, the Temporal dev server and HAPI FHIR.

Every page must load nothing from outside this machine, and never show the patient's name or MRN.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from referral_service.domain.program import Program
from referral_service.domain.referral import Identifier, referral_key
from referral_service.ehr.client import FhirClient
from tests.api_server import running_api
from tests.conftest import HAPI_SOURCE_ID
from tests.referrals import referral_bundle

ADA = "ada-testpatient-adult-inpatient"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

# No skip when chromium is missing: scripts/setup.sh installs it, and a skipped browser test must not pass.
pytestmark = [pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
async def api_url(temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient) -> AsyncIterator[str]:
    async with running_api(temporal_env, hapi_base_url, hapi_client, queue_prefix="dash") as url:
        yield url


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield launched
        await launched.close()


@dataclass
class Tab:
    page: Page
    requests: list[str] = field(default_factory=list)

    def assert_only_local_requests(self) -> None:
        foreign = [url for url in self.requests if urlsplit(url).hostname not in LOCAL_HOSTS]
        assert self.requests, "the page made no requests at all"
        assert not foreign, f"requests left this machine: {foreign}"


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[Tab]:
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    page.set_default_timeout(30_000)
    opened = Tab(page)
    page.on("request", lambda request: opened.requests.append(request.url))
    yield opened
    opened.assert_only_local_requests()
    await context.close()


@dataclass
class Submitted:
    key: str
    hospital_discharge: date
    phi: list[str]


async def submit(api_url: str) -> Submitted:
    """Ada's referral with fresh identifiers, through the FHIR intake (POST /fhir)."""
    bundle = referral_bundle(ADA)
    resources: dict[str, Any] = {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}
    placer = resources["ServiceRequest"]["identifier"][0]
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as api:
        response = await api.post("/fhir", json=bundle, headers={"Content-Type": "application/fhir+json"})
    assert response.status_code in (200, 201), response.text
    patient = resources["Patient"]
    return Submitted(
        key=referral_key(HAPI_SOURCE_ID, Identifier(system=placer["system"], value=placer["value"])),
        hospital_discharge=date.fromisoformat(resources["Encounter"]["period"]["end"][:10]),
        phi=[patient["name"][0]["family"], patient["identifier"][0]["value"], patient["birthDate"]],
    )


async def open_inbox_until(page: Page, url: str, until: str, *, present: bool, patience_s: float = 60.0) -> None:
    """Load /inbox until the selector is there (or gone): the inbox reads the eventually consistent visibility."""
    deadline = time.monotonic() + patience_s
    while True:
        await page.goto(f"{url}/inbox")
        if (await page.locator(until).count() > 0) == present:
            return
        assert time.monotonic() < deadline, f"{until} still {'missing' if present else 'listed'} after {patience_s}s"
        await asyncio.sleep(0.5)


async def assert_patient_shown(page: Page, values: list[str]) -> None:
    """The local user holds every staff role: the page names the patient."""
    text = await page.content()
    for value in values:
        assert value in text, f"{value!r} not on {page.url}"


async def test_accept_from_the_inbox_then_follow_attendance_on_the_referral_page(api_url, tab, program: Program):
    page = tab.page
    referral = await submit(api_url)
    row_selector = f'tr[data-referral="{referral.key}"]'

    await page.goto(api_url + "/")
    assert page.url == f"{api_url}/inbox"
    await open_inbox_until(page, api_url, f'{row_selector}[data-phase="screening"]', present=True)

    row = page.locator(row_selector)
    await expect(row).to_contain_text(HAPI_SOURCE_ID)
    await expect(row).to_contain_text("inpatient")
    await expect(row).to_contain_text(referral.hospital_discharge.isoformat())
    await expect(row.locator("time").last).to_have_text(re.compile(r"^(in|overdue by) (\d+ d \d+ h|\d+ h|< 1 h)$"))
    await expect(row.get_by_label("Track")).to_be_visible()
    await expect(row.get_by_label("Decline reason")).to_be_visible()
    await assert_patient_shown(page, referral.phi[:2])  # family name and MRN (the age, not the birth date)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "inbox.png"))

    await row.get_by_label("Track").select_option("adult-mh")
    async with page.expect_navigation():
        await row.get_by_role("button", name="Accept").click()

    assert page.url == f"{api_url}/inbox"
    await expect(page.locator('[data-flash="notice"]')).to_contain_text(f"{referral.key}: accept recorded")
    await open_inbox_until(page, api_url, row_selector, present=False)

    await page.goto(f"{api_url}/referrals/{referral.key}")
    await expect(page.locator('[data-field="phase"]')).to_have_text("intake_scheduled")
    await expect(page.locator('[data-field="track"]')).to_contain_text("adult-mh")
    for role in ("case_manager", "primary_therapist", "prescriber"):
        await expect(page.locator(f'tr[data-role="{role}"] td')).not_to_be_empty()
    link = await page.locator("a[data-temporal-link]").get_attribute("href")
    assert link is not None
    assert link.endswith(f"/namespaces/default/workflows/{referral.key}")

    first = referral.hospital_discharge + timedelta(days=3)
    second = first + timedelta(days=7)
    assert first.isocalendar().week != second.isocalendar().week
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as api:
        for number, (day, minutes) in enumerate(((first, 180), (second, 360)), start=1):
            session = {"session_id": f"s{number}", "date": day.isoformat(), "kind": "group", "minutes": minutes}
            recorded = await api.post(
                f"/api/referrals/{referral.key}/sessions", json={"session": {**session, "attended": True}}
            )
            assert recorded.status_code == 200, recorded.text

    await page.reload()
    await expect(page.locator('[data-field="phase"]')).to_have_text("in_treatment")
    bars = page.locator("svg rect[data-week]")
    await expect(bars).to_have_count(2)
    heights = {
        await bar.get_attribute("data-week"): float(await bar.get_attribute("data-hours") or "nan")
        for bar in await bars.all()
    }
    week = "{0}-W{1:02d}".format
    assert heights == {week(*first.isocalendar()[:2]): 3.0, week(*second.isocalendar()[:2]): 6.0}
    await expect(bars.first.locator("title")).to_have_text(f"{week(*first.isocalendar()[:2])}: 3 h")
    minimum = await page.locator("svg line.minimum").get_attribute("data-min-hours")
    assert float(minimum or "nan") == program.track("adult-mh").min_weekly_hours
    await expect(page.locator('tr[data-resource-type="Encounter"]')).to_have_count(2)  # one per attended session
    await expect(page.locator("table.timeline tbody tr").first).to_be_visible()
    await assert_patient_shown(page, referral.phi)
    await page.screenshot(path=str(SCREENSHOTS / "referral.png"))


async def test_a_decline_without_a_reason_shows_the_workflows_refusal(api_url, tab):
    page = tab.page
    referral = await submit(api_url)
    row_selector = f'tr[data-referral="{referral.key}"]'
    await open_inbox_until(page, api_url, f'{row_selector}[data-phase="screening"]', present=True)
    decline = page.locator(row_selector).locator("form.decision-decline")
    reason = decline.get_by_label("Decline reason")
    assert await reason.get_attribute("required") is not None  # the browser asks for a reason first ...

    await decline.evaluate("form => { form.noValidate = true; }")  # ... a client that skips that still cannot
    async with page.expect_navigation():
        await decline.get_by_role("button", name="Decline").click()

    error = page.locator('[data-flash="error"]')
    await expect(error).to_contain_text("a decline needs a coded reason")
    await expect(error).to_contain_text(referral.key)
    await page.reload()
    await expect(page.locator('[data-flash="error"]')).to_have_count(0)  # shown once (POST-redirect-GET)
    await expect(page.locator(row_selector)).to_have_attribute("data-phase", "screening")


async def test_pages_fit_a_narrow_screen_and_an_unknown_referral_is_a_404(api_url, tab):
    page = tab.page
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(f"{api_url}/inbox")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    response = await page.goto(f"{api_url}/referrals/hapi-test.no-such-referral.0000000000")
    assert response is not None
    assert response.status == 404
    await expect(page.get_by_role("alert")).to_contain_text("no such referral")
    css = await page.request.get(f"{api_url}/static/dashboard.css")
    assert css.ok
    assert "text/css" in css.headers["content-type"]
