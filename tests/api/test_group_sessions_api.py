"""A group's roster recorded at once (``POST /api/groups/{group}/sessions``): each referral gets its session,
one refusal does not stop the others, and the same roster again changes nothing.

Real uvicorn API, a real worker on the time-skipping Temporal server, the real HAPI server read back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from tests.api_driver import Api
from tests.api_server import driven_api
from tests.program_day import program_today


@pytest.fixture
async def driver(time_skipping_env, hapi_base_url, hapi_client) -> AsyncIterator[Api]:
    async with driven_api(time_skipping_env, hapi_base_url, hapi_client, queue_prefix="groups") as api:
        yield api


@pytest.fixture
def api(driver: Api) -> httpx.AsyncClient:
    return driver.http


async def test_a_roster_is_recorded_per_referral_and_again_changes_nothing(api, driver, time_skipping_env, hapi_client):
    # Yesterday's group, then today's (no session may be dated after today in the program's zone). Discharged
    # the day before: both sessions are inside the 7-day first-session deadline, whatever the date.
    day = program_today(await time_skipping_env.get_current_time()) - timedelta(days=1)
    present, missing, unscreened = [await driver.submit(discharged_on=day - timedelta(days=1)) for _ in range(3)]
    for key in (present, missing):
        accepted = await api.post(f"/api/referrals/{key}/decision", json={"decision": "accept", "track_id": "adult-mh"})
        assert accepted.status_code == 200, accepted.text
    roster = {
        "date": str(day),
        "kind": "group",
        "minutes": 180,
        "entries": [
            {"referral_id": present, "status": "late", "minutes": 150},
            {"referral_id": missing, "status": "absent"},
            {"referral_id": unscreened, "status": "attended"},
        ],
    }

    first = await api.post("/api/groups/dbt-skills/sessions", json=roster)
    again = await api.post("/api/groups/dbt-skills/sessions", json=roster)

    assert (first.status_code, again.status_code) == (207, 207), first.text
    assert first.json() == again.json()
    assert first.json()["session_id"] == f"dbt-skills-{day}"
    results = {r["referral_id"]: r for r in first.json()["results"]}
    assert (results[present]["ok"], results[present]["phase"], results[present]["at_risk"]) == (
        True,
        "in_treatment",
        False,
    )
    assert (results[missing]["ok"], results[missing]["phase"]) == (True, "intake_scheduled")
    assert (results[unscreened]["ok"], results[unscreened]["status"]) == (False, 409)
    assert "not in phase screening" in results[unscreened]["error"]

    attended = (await api.get(f"/api/referrals/{present}")).json()["sessions"]
    assert [(s["session_id"], s["minutes"], s["attended"], s["late"]) for s in attended] == [
        (f"dbt-skills-{day}", 150, True, True)
    ]
    [encounter] = await hapi_client.search(
        "Encounter", {"identifier": f"{RESOURCE_KEY_SYSTEM}|{present}/encounter/dbt-skills-{day}"}
    )
    assert encounter["meta"]["versionId"] == "1"  # the repeat rewrote nothing
    assert (
        await hapi_client.search(
            "Encounter", {"identifier": f"{RESOURCE_KEY_SYSTEM}|{missing}/encounter/dbt-skills-{day}"}
        )
        == []
    )

    next_day = {**roster, "date": str(day + timedelta(days=1)), "entries": roster["entries"][:2]}
    everyone = await api.post("/api/groups/dbt-skills/sessions", json={**next_day, "track_id": "adult-mh"})
    assert everyone.status_code == 200, everyone.text
    assert all(r["ok"] for r in everyone.json()["results"])
    wrong_track = await api.post("/api/groups/sud-evening/sessions", json={**next_day, "track_id": "sud"})
    assert wrong_track.status_code == 207
    assert [r["error"] for r in wrong_track.json()["results"]] == ["this referral is on track adult-mh, not sud"] * 2
