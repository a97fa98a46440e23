"""The quality measures page in a real browser, on referrals driven through the real API and workflow.

The referrals leave hospital in a period of their own (a random stretch of the past), so referrals of other
tests never fall in it; their sessions put them inside or outside the HEDIS 7- and 30-day windows, including a
session on the discharge day, which does not count.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.api_driver import Api
from tests.conftest import HAPI_SOURCE_ID
from tests.dashboard.test_dashboard_browser import SCREENSHOTS, api_url, browser, tab  # noqa: F401 (fixtures)
from tests.program_day import program_today

pytestmark = [pytest.mark.timeout(600)]
PATIENCE_S = 90.0


async def measures_once_settled(http: httpx.AsyncClient, period: dict[str, str]) -> dict[str, Any]:
    """``GET /api/measures`` until all four referrals are listed past screening and the closed one's
    follow-ups pend (the list comes from the visibility store, which lags changes by a second or so)."""
    deadline = time.monotonic() + PATIENCE_S
    while True:
        response = await http.get("/api/measures", params=period)
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        if report["overall"]["referrals"] == 4 and report["overall"]["follow_ups_reached"]["pending"] == 2:
            return report
        assert time.monotonic() < deadline, f"measures never settled: {report['overall']}"
        await asyncio.sleep(0.5)


async def test_measures_page_shows_the_follow_up_rates_their_denominators_and_the_chart(api_url, tab):  # noqa: F811
    start = date(2003, 1, 6) + timedelta(days=random.randrange(6000))  # noqa: S311 - a test period, not a secret
    day = lambda n: start + timedelta(days=n)  # noqa: E731
    async with httpx.AsyncClient(base_url=api_url, timeout=180) as http:  # EHR writes are slow on a busy machine
        api = Api(http)
        # adult-mh: day 3 (inside both windows), then completed and aftercare follow-ups missed
        seen_day_3 = await api.submit(day(0))
        # adult-mh: the discharge day (does not count), then day 10 (inside 30 only)
        discharge_day_then_10 = await api.submit(day(0))
        # adult-mh: never attends (outside both)
        never = await api.submit(day(1))
        # sud: day 2 (inside both)
        sud_day_2 = await api.submit(day(2))
        # outside the period (discharged after it ends): must not count anywhere
        later = await api.submit(day(40))
        for key, track in (
            (seen_day_3, "adult-mh"),
            (discharge_day_then_10, "adult-mh"),
            (never, "adult-mh"),
            (sud_day_2, "sud"),
            (later, "adult-mh"),
        ):
            await api.accept(key, track)
        await api.attend(seen_day_3, day(3), session_id="s1")
        await api.attend(discharge_day_then_10, day(0), session_id="s1")
        await api.attend(discharge_day_then_10, day(10), session_id="s2")
        await api.attend(sud_day_2, day(4), session_id="s1")
        await api.attend(later, day(41), session_id="s1")
        # Program discharge today (the plan cannot end before its start, the acceptance day): its aftercare
        # follow-ups are due in 7 and 30 days, so they pend rather than count as missed.
        await api.discharge(seen_day_3, "completed", program_today())
        await api.snapshot_until(seen_day_3, lambda s: s["phase"] == "aftercare", "aftercare")

        period = {"from": day(0).isoformat(), "to": day(13).isoformat()}
        report = await measures_once_settled(http, period)
        openapi = (await http.get("/openapi.json")).json()
    assert "/api/measures" in openapi["paths"]

    tracks = {group["group"]: group for group in report["by_track"]}
    assert report["overall"]["referrals"] == 4
    assert (
        tracks["adult-mh"]["follow_up_7_days"]["numerator"],
        tracks["adult-mh"]["follow_up_7_days"]["denominator"],
    ) == (1, 3)
    assert tracks["adult-mh"]["follow_up_30_days"]["numerator"] == 2
    assert tracks["adult-mh"]["median_days_to_first_session"] == 1.5  # days 3 and 0
    assert tracks["adolescent"]["follow_up_7_days"]["rate"] is None

    page = tab.page
    await page.goto(f"{api_url}/inbox")
    await page.get_by_role("link", name="Measures").click()
    await page.get_by_label("Discharged from").fill(period["from"])
    await page.get_by_label("to", exact=True).fill(period["to"])
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_url(re.compile(r"/measures\?from=.*&to="))
    assert f"from={period['from']}" in page.url
    await expect(page.locator('[data-field="accepted"]')).to_have_text("4")

    def cell(table: str, group: str, measure: str):
        return page.locator(f'#{table} tr[data-group="{group}"] td[data-measure="{measure}"]')

    expected = {
        ("by-track", "adult-mh", "follow_up_7_days"): ("1", "3", "33%"),
        ("by-track", "adult-mh", "follow_up_30_days"): ("2", "3", "67%"),
        ("by-track", "adult-mh", "completed"): ("1", "1", "100%"),
        ("by-track", "sud", "follow_up_7_days"): ("1", "1", "100%"),
        ("by-track", "all", "follow_up_7_days"): ("2", "4", "50%"),
        ("by-track", "all", "follow_up_30_days"): ("3", "4", "75%"),
        ("by-source", HAPI_SOURCE_ID, "follow_up_7_days"): ("2", "4", "50%"),
    }
    for (table, group, measure), (numerator, denominator, shown) in expected.items():
        target = cell(table, group, measure)
        await expect(target).to_have_attribute("data-numerator", numerator)
        await expect(target).to_have_attribute("data-denominator", denominator)
        await expect(target).to_contain_text(f"{shown} ({numerator}/{denominator})")
    await expect(cell("by-track", "adult-mh", "median_days_to_first_session")).to_contain_text("1.5 d")
    await expect(cell("by-track", "adolescent", "follow_up_7_days")).to_contain_text("no data (0/0)")
    await expect(cell("by-track", "adult-mh", "follow_ups_reached")).to_contain_text("no data (0/0)")
    await expect(cell("by-track", "adult-mh", "follow_ups_reached")).to_contain_text("2 pending")

    bars = {
        (await bar.get_attribute("data-track"), await bar.get_attribute("data-window")): bar
        for bar in await page.locator("svg rect[data-window]").all()
    }
    assert set(bars) == {("adult-mh", "7"), ("adult-mh", "30"), ("sud", "7"), ("sud", "30")}  # no bar without data
    percent = {k: await b.get_attribute("data-percent") for k, b in bars.items()}
    assert percent == {("adult-mh", "7"): "33.3", ("adult-mh", "30"): "66.7", ("sud", "7"): "100", ("sud", "30"): "100"}
    heights = {k: float(await b.get_attribute("height") or "nan") for k, b in bars.items()}
    assert heights[("adult-mh", "30")] == pytest.approx(2 * heights[("adult-mh", "7")], abs=0.05)
    full_scale = [float(await t.get_attribute("y1") or "nan") for t in await page.locator("svg g.axis line").all()]
    assert heights[("sud", "7")] == pytest.approx(max(full_scale) - min(full_scale), abs=0.05)  # 100% = the plot
    await expect(page.locator('svg text.bar-value[data-track="adult-mh"][data-window="7"]')).to_have_text("33%")
    await expect(page.locator('svg text.no-data[data-track="adolescent"]')).to_have_text("no data")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "measures.png"))

    await page.set_viewport_size({"width": 390, "height": 844})
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


async def test_a_period_that_ends_before_it_starts_is_explained_not_computed(api_url, tab):  # noqa: F811
    page = tab.page
    response = await page.goto(f"{api_url}/measures?from=2026-03-10&to=2026-03-01")
    assert response is not None
    assert response.status == 400
    await expect(page.get_by_role("alert")).to_contain_text("must not end before it starts")
    await expect(page.locator("table.measures")).to_have_count(0)
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as http:
        refused = await http.get("/api/measures", params={"from": "2026-03-10", "to": "2026-03-01"})
    assert refused.status_code == 422
