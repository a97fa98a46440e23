"""My day in a real browser (headless chromium) against the real API, worker, Temporal and HAPI, signed in by
bearer token: a case manager sees the groups on their tracks with who is expected, the first sessions due and
the referrals at risk on their own caseload, and one click opens the attendance form; a program admin sees
everyone's."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from temporalio.testing import WorkflowEnvironment

from referral_service.ehr.client import FhirClient
from referral_service.programs import DEFAULT_PROGRAM_FILE
from tests.api_driver import Api
from tests.api_server import running_api
from tests.auth_tokens import auth_settings, token
from tests.conftest import HAPI_SOURCE_ID
from tests.dashboard.test_dashboard_browser import VIEWPORT, browser  # noqa: F401 (fixtures)
from tests.program_day import program_today

pytestmark = [pytest.mark.timeout(600)]
ADULT = "Adult mental health (day)"
EVENING = "Adult evening (for people who work)"


def program_file(folder: Path) -> Path:
    """The example program, its adult day and evening groups meeting every day, a second case manager on the
    evening track only, and each case manager's sign-in subject."""
    text = DEFAULT_PROGRAM_FILE.read_text()
    text = text.replace("days = [1, 3, 5]", "days = [1, 2, 3, 4, 5, 6, 7]", 1)  # adult-mh
    text = re.sub(r'(id = "evening"(?:.|\n)*?)days = \[[^]]*\]', r"\1days = [1, 2, 3, 4, 5, 6, 7]", text, count=1)
    text = text.replace('id = "cm-patel"', 'id = "cm-patel"\nsubjects = ["patel-login"]', 1)
    text += (
        '\n[[roster]]\nid = "cm-okoro"\nname = "Chidi Okoro"\nrole = "case_manager"\nnucc_code = "171M00000X"\n'
        'tracks = ["evening"]\ncaseload_limit = 40\nsubjects = ["okoro-login"]\n'
    )
    path = folder / "program.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
async def api_url(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient, tmp_path_factory
) -> AsyncIterator[str]:
    folder = tmp_path_factory.mktemp("my-day")
    overrides = {"program_file": program_file(folder)}
    async with running_api(
        temporal_env, hapi_base_url, hapi_client, queue_prefix="myday", auth=auth_settings(folder), overrides=overrides
    ) as url:
        yield url


async def signed_in(browser: Browser, *roles: str, subject: str) -> Page:  # noqa: F811
    context = await browser.new_context(viewport=VIEWPORT, extra_http_headers=token(*roles, sub=subject))
    page = await context.new_page()
    page.set_default_timeout(30_000)
    return page


async def open_until(page: Page, url: str, keys: list[str], patience_s: float = 30.0) -> None:
    """Load ``url`` until every key is on it (the read model follows each workflow's change)."""
    deadline = time.monotonic() + patience_s
    while True:
        await page.goto(url)
        if all([await page.locator(f'[data-referral="{key}"]').count() for key in keys]):
            return
        assert time.monotonic() < deadline, f"{url} still lacks some of {keys}"
        await asyncio.sleep(0.3)


async def test_my_day_for_a_case_manager_and_for_an_admin(api_url, browser):  # noqa: F811
    today = program_today()
    staff = token("referring-system", "program-admin", source=HAPI_SOURCE_ID, sub="admin-login")
    async with httpx.AsyncClient(base_url=api_url, timeout=180, headers=staff) as http:
        api = Api(http)
        due, missing, evening = [await api.submit(today - timedelta(days=5)) for _ in range(3)]
        for key, track in ((due, "adult-mh"), (missing, "adult-mh"), (evening, "evening")):
            await api.accept(key, track)
        for n in (3, 2):  # two missed sessions: at risk, outreach asked for
            session = {"session_id": f"m{n}", "date": (today - timedelta(days=n)).isoformat(), "kind": "group"}
            missed = await http.post(
                f"/api/referrals/{missing}/sessions", json={"session": session | {"minutes": 180, "attended": False}}
            )
            assert missed.status_code == 200, missed.text
        assert (await http.get(f"/api/referrals/{evening}")).json()["team"]["members"]["case_manager"][
            "id"
        ] == "cm-okoro"

    patel = await signed_in(browser, "case-manager", subject="patel-login")
    await open_until(patel, f"{api_url}/today", [due, missing])
    await expect(patel.get_by_text("Priya Patel's caseload")).to_be_visible()
    adult = patel.locator('article.day-group[data-track="adult-mh"]')
    await expect(adult.get_by_role("heading", name=re.compile(re.escape(ADULT)))).to_be_visible()
    await expect(adult.locator(f'[data-referral="{due}"]')).to_be_visible()
    await expect(adult.locator(f'[data-referral="{missing}"]')).to_be_visible()
    first = patel.locator('[data-section="first-sessions"]')
    await expect(first.locator(f'[data-referral="{due}"]')).to_contain_text((today + timedelta(days=2)).isoformat())
    await expect(first.locator(f'[data-referral="{evening}"]')).to_have_count(0)  # cm-okoro's, not hers
    at_risk = patel.locator('[data-section="at-risk"]')
    await expect(at_risk.locator(f'[data-referral="{missing}"]')).to_contain_text("at risk")
    await expect(at_risk.locator(f'[data-referral="{due}"]')).to_have_count(0)
    outreach = patel.locator('[data-section="outreach"]')
    await expect(outreach.locator(f'[data-referral="{missing}"]')).to_contain_text(
        (today - timedelta(days=2)).isoformat()
    )

    await patel.get_by_role("link", name=f"Take attendance: {ADULT}").click()
    await patel.wait_for_url(f"{api_url}/groups?*")
    await expect(patel.get_by_label("Track")).to_have_value("adult-mh")
    await expect(patel.get_by_label("Date")).to_have_value(today.isoformat())
    await expect(patel.get_by_role("heading", name=f"Roster: adult-mh, group on {today.isoformat()}")).to_be_visible()
    await expect(patel.get_by_label(f"Status of {due}")).to_be_visible(timeout=60_000)

    admin = await signed_in(browser, "program-admin", subject="admin-login")
    await open_until(admin, f"{api_url}/today", [due, missing, evening])
    await expect(admin.get_by_text("everyone's caseload")).to_be_visible()
    await expect(
        admin.locator('article.day-group[data-track="evening"]').locator(f'[data-referral="{evening}"]')
    ).to_be_visible()
    everyone_first = admin.locator('[data-section="first-sessions"]')
    for key in (due, evening):
        await expect(everyone_first.locator(f'[data-referral="{key}"]')).to_be_visible()

    stranger = await signed_in(browser, "case-manager", subject="nobody-login")
    await stranger.goto(f"{api_url}/today")
    await expect(stranger.get_by_role("alert")).to_contain_text("your sign-in is on no roster member")
