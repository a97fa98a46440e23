"""The caseload board in a real browser, against the real API, worker, Temporal and HAPI.

The Temporal server is shared with earlier test modules, whose referrals stay listed (frozen: their workers
have stopped). So the test reads the board's counts first and checks that its own three referrals change
them exactly as expected, under each filter.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.api_driver import Api
from tests.dashboard.test_dashboard_browser import api_url, browser, tab  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.timeout(600)]
PATIENCE_S = 90.0
Cell = tuple[str, str]  # (track, phase); track "" = not accepted yet
FILTERS = {
    "all": "",
    "therapist of sud": "member=ladc-brooks",
    "therapist of adult-mh": "member=lcsw-reyes",
    "overdue": "overdue=yes",
    "adult-mh at risk": "track=adult-mh&at_risk=yes",
    "sud": "track=sud",
}


async def counts(page: Page, url: str, query: str) -> Counter[Cell]:
    await page.goto(f"{url}/caseload?{query}")
    found: Counter[Cell] = Counter()
    for cell in await page.locator("table.counts tbody td[data-count]").all():
        row = cell.locator("xpath=ancestor::tr[1]")
        track, phase = await row.get_attribute("data-track"), await cell.get_attribute("data-phase")
        found[(track or "", phase or "")] = int(await cell.get_attribute("data-count") or "-1")
    return +found  # zeros dropped


async def test_board_counts_by_track_and_phase_and_each_filter_narrows_them(api_url, tab):  # noqa: F811
    page = tab.page
    before = {name: await counts(page, api_url, query) for name, query in FILTERS.items()}
    today = datetime.now(UTC).date()
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as http:
        api = Api(http)
        # adult-mh, left hospital yesterday: first session due within the week, nothing overdue
        on_time = await api.submit(today - timedelta(days=1))
        # sud, left hospital 40 days ago: the first-session deadline has passed, so overdue and at risk
        late = await api.submit(today - timedelta(days=40))
        # still waiting for a screening decision
        waiting = await api.submit(today - timedelta(days=1))
        await api.accept(on_time, "adult-mh")
        await api.accept(late, "sud")
        await api.snapshot_until(late, lambda s: "first session" in s["overdue"], "first session overdue")
        await api.snapshot_until(waiting, lambda s: s["phase"] == "screening", "screening")

    added = {
        "all": Counter({("adult-mh", "intake_scheduled"): 1, ("sud", "intake_scheduled"): 1, ("", "screening"): 1}),
        "therapist of sud": Counter({("sud", "intake_scheduled"): 1}),
        "therapist of adult-mh": Counter({("adult-mh", "intake_scheduled"): 1}),
        "overdue": Counter({("sud", "intake_scheduled"): 1}),
        "adult-mh at risk": Counter(),
        "sud": Counter({("sud", "intake_scheduled"): 1}),
    }
    for name, query in FILTERS.items():
        expected = before[name] + added[name]
        deadline = time.monotonic() + PATIENCE_S  # the board lists from the lagging visibility store
        while (now := await counts(page, api_url, query)) != expected:
            assert time.monotonic() < deadline, f"{name}: {dict(now)} != {dict(expected)}"
            await asyncio.sleep(0.5)
        total = sum(expected.values())
        await expect(page.locator('[data-field="total"]')).to_have_text(str(total))

    # The filters are a GET form: choose with the keyboard-reachable controls, submit, and the form keeps them.
    await page.goto(f"{api_url}/inbox")
    await page.get_by_role("link", name="Caseload").click()
    await page.get_by_label("Team member").select_option("ladc-brooks")
    await page.get_by_label("Overdue only").check()
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url("**/caseload?*")
    assert "member=ladc-brooks" in page.url
    assert "overdue=yes" in page.url
    await expect(page.get_by_label("Team member")).to_have_value("ladc-brooks")
    await expect(page.get_by_label("Overdue only")).to_be_checked()
    listed = page.locator(f'table.caseload tr[data-referral="{late}"]')
    await expect(listed).to_have_attribute("data-phase", "intake_scheduled")
    await expect(listed).to_contain_text("overdue")
    await expect(listed).to_contain_text("at risk")
    await expect(listed).to_contain_text("Priya Patel")  # the case manager
    for other in (on_time, waiting):
        await expect(page.locator(f'tr[data-referral="{other}"]')).to_have_count(0)
    await expect(page.locator('nav a[aria-current="page"]')).to_have_text("Caseload")

    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(f"{api_url}/caseload")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

    async with httpx.AsyncClient(base_url=api_url, timeout=60) as http:  # out of later inboxes (no worker then)
        declined = await http.post(
            f"/api/referrals/{waiting}/decision", json={"decision": "decline", "decline_reason": "no_capacity"}
        )
    assert declined.status_code == 200, declined.text
