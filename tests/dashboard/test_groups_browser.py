"""Group attendance in a real browser: pick a track's session, mark its roster in one form, and see each
referral's record on its page and in its snapshot (real API, worker, Temporal and HAPI FHIR)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.api_driver import Api
from tests.dashboard.test_dashboard_browser import api_url, browser, tab  # noqa: F401 (fixtures)
from tests.program_day import program_today

pytestmark = [pytest.mark.timeout(600)]
TRACK = "co-occurring"


async def open_roster_until(page: Page, url: str, keys: list[str], patience_s: float = 60.0) -> None:
    """Load the roster until every referral is on it (the roster reads the eventually consistent visibility)."""
    deadline = time.monotonic() + patience_s
    while True:
        await page.get_by_role("button", name="Show roster").click()
        await page.wait_for_url(f"{url}/groups?*")
        listed = [await page.locator(f'form.roster tr[data-referral="{key}"]').count() for key in keys]
        if all(listed):
            return
        assert time.monotonic() < deadline, f"roster still lacks some of {keys} after {patience_s}s"
        await asyncio.sleep(0.5)


async def test_mark_a_tracks_roster_in_one_form_and_see_each_session_on_the_referral(api_url, tab):  # noqa: F811
    today = program_today()
    session_day = today - timedelta(days=2)
    async with httpx.AsyncClient(base_url=api_url, timeout=180) as http:
        api = Api(http)
        present, missing = [await api.submit(today - timedelta(days=5)) for _ in range(2)]
        for key in (present, missing):
            await api.accept(key, TRACK)

    page = tab.page
    await page.goto(f"{api_url}/inbox")
    await page.get_by_role("link", name="Groups").click()
    await page.get_by_label("Track").select_option(TRACK)
    await page.get_by_label("Date").fill(session_day.isoformat())
    await page.get_by_label("Session kind").select_option("group")
    await page.get_by_label("Minutes").fill("150")
    await open_roster_until(page, api_url, [present, missing])
    await expect(
        page.get_by_role("heading", name=f"Roster: {TRACK}, group on {session_day.isoformat()}")
    ).to_be_visible()

    await page.get_by_label(f"Status of {present}").select_option("attended")
    await page.get_by_label(f"Status of {missing}").select_option("absent")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Record attendance").click()

    session_id = f"{TRACK}-group-{session_day.isoformat()}"
    await expect(page.get_by_role("heading", name=f"Recorded: session {session_id}")).to_be_visible()
    for key in (present, missing):
        result = page.locator(f'tr[data-result="{key}"]')
        await expect(result).to_have_attribute("data-ok", "yes")
        await expect(result).to_contain_text("recorded")
    await expect(page.locator(f'tr[data-result="{present}"] td').nth(1)).to_have_text("in_treatment")
    await expect(page.locator(f'tr[data-result="{missing}"] td').nth(1)).to_have_text("intake_scheduled")

    await page.get_by_role("link", name=present).first.click()
    row = page.locator(f'table.sessions tr[data-session="{session_id}"]')
    await expect(row).to_have_attribute("data-status", "attended")
    await expect(row).to_contain_text("150")
    await expect(page.locator("svg rect[data-week]")).to_have_count(1)
    await expect(page.locator("svg rect[data-week]")).to_have_attribute("data-hours", "2.5")
    await page.goto(f"{api_url}/referrals/{missing}")
    await expect(page.locator(f'table.sessions tr[data-session="{session_id}"]')).to_have_attribute(
        "data-status", "absent"
    )

    await page.set_viewport_size({"width": 390, "height": 844})  # a narrow window: nothing scrolls sideways
    for path in (f"/referrals/{missing}", f"/groups?track={TRACK}&date={session_day.isoformat()}"):
        await page.goto(api_url + path)
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), path

    # Tomorrow's session cannot be marked yet: each referral's result names the rule.
    tomorrow = program_today() + timedelta(days=1)
    await page.goto(f"{api_url}/groups?track={TRACK}&date={tomorrow.isoformat()}&kind=group&minutes=150")
    await page.get_by_label(f"Status of {present}").select_option("attended")
    await page.get_by_label(f"Status of {missing}").select_option("absent")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Record attendance").click()
    for key in (present, missing):
        result = page.locator(f'tr[data-result="{key}"]')
        await expect(result).to_have_attribute("data-ok", "no")
        await expect(result).to_contain_text("refused session-in-future: ")
        await expect(result).to_contain_text(f"cannot be dated after today ({program_today().isoformat()}, ")

    async with httpx.AsyncClient(base_url=api_url, timeout=60) as http:
        for key, attended in ((present, True), (missing, False)):
            snapshot = (await http.get(f"/api/referrals/{key}")).json()
            [session] = snapshot["sessions"]
            assert (session["session_id"], session["date"], session["minutes"], session["attended"]) == (
                session_id,
                session_day.isoformat(),
                150,
                attended,
            )
