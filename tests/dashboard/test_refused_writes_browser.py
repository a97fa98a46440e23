"""A referral whose writes the EHR refuses, as staff see it in a real browser: flagged in the inbox and on the
caseload, each refusal listed on the referral page, and the "Retry refused writes" button (a CSRF-carrying form)
that sends them again. Real API, worker, Temporal dev server and our HAPI test server's refusal switch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import expect

from tests.api_driver import Api
from tests.dashboard.test_dashboard_browser import SCREENSHOTS, api_url, browser, tab  # noqa: F401 (fixtures)
from tests.hapi_refusals import refusing, set_refusals

pytestmark = [pytest.mark.timeout(600)]


async def test_refused_writes_are_flagged_listed_and_retried_from_the_referral_page(
    api_url,  # noqa: F811
    tab,  # noqa: F811
    hapi_base_url,
):
    page = tab.page
    today = datetime.now(UTC).date()
    async with refusing(hapi_base_url, {"Task": 422}), httpx.AsyncClient(base_url=api_url, timeout=180) as http:
        api = Api(http)
        key = await api.submit(today - timedelta(days=1))
        await api.snapshot_until(key, lambda s: s["phase"] == "screening" and s["refused"], "the Task refused")

        await page.goto(f"{api_url}/inbox")
        row = page.locator(f'tr[data-referral="{key}"]')
        await expect(row.locator(".flag-refused")).to_have_text("1 write refused by the EHR")

        await api.accept(key, "adult-mh")
        await page.goto(f"{api_url}/caseload")
        await expect(page.locator(f'tr[data-referral="{key}"] .flag-refused')).to_have_text(
            "1 write refused by the EHR"
        )

        await page.goto(f"{api_url}/referrals/{key}")
        section = page.get_by_role("region", name="Refused by the EHR")
        refused = section.locator('tr[data-refused="Task"]')
        await expect(refused).to_have_attribute("data-status", "422")
        await expect(refused).to_contain_text("error processing at Task")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await section.screenshot(path=str(SCREENSHOTS / "refused-writes.png"))
        async with page.expect_navigation():
            await section.get_by_role("button", name="Retry refused writes").click()
        await expect(page.locator('[data-flash="error"]')).to_have_text(
            "the EHR took: none; still refused: Task (HTTP 422)"
        )

        await set_refusals(hapi_base_url, {})  # the EHR's side is fixed
        async with page.expect_navigation():
            await section.get_by_role("button", name="Retry refused writes").click()
        await expect(page.locator('[data-flash="notice"]')).to_have_text("the EHR took every refused write: Task")
        await expect(page.get_by_role("region", name="Refused by the EHR")).to_have_count(0)
        state = (await http.get(f"/api/referrals/{key}")).json()
        assert (state["refused"], state["writes"][f"{key}/task"]["resource_type"]) == ({}, "Task")
        await http.post(f"/api/referrals/{key}/cancel", json={"reason": "test ended"})
