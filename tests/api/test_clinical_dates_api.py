"""Clinical dates through the case-manager API: a session, a roster or a discharge dated where no such event can
be answers 422 naming the rule, and changes nothing: the snapshot stays as it was and the EHR gets no write.

Real uvicorn API, a real worker on the time-skipping Temporal server (its clock stands still here, so "today"
is fixed for a test), the real HAPI server read back. "Today" is the program's day (America/New_York).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from referral_service.domain.attendance import AttendanceStatus, attendance_flags
from referral_service.ehr.client import FhirClient
from tests.api_driver import Api
from tests.api_server import driven_api
from tests.program_day import PROGRAM, program_today

ZONE = PROGRAM.time_zone


@pytest.fixture
async def driver(time_skipping_env, hapi_base_url, hapi_client) -> AsyncIterator[Api]:
    async with driven_api(time_skipping_env, hapi_base_url, hapi_client, queue_prefix="dates") as api:
        yield api


@pytest.fixture
def api(driver: Api) -> httpx.AsyncClient:
    return driver.http


@pytest.fixture
async def today(time_skipping_env) -> date:
    return program_today(await time_skipping_env.get_current_time())


def _session(session_id: str, day: date, status: AttendanceStatus = "attended") -> dict[str, Any]:
    return {"session_id": session_id, "date": day.isoformat(), "kind": "group", "minutes": 180} | attendance_flags(
        status
    )


def _refused(response: httpx.Response, rule: str) -> str:
    """The 422's message, which must lead with the rule's name."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert detail.startswith(f"{rule}: "), detail
    return detail


async def _snapshot(api: httpx.AsyncClient, key: str) -> dict[str, Any]:
    response = await api.get(f"/api/referrals/{key}")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


async def _written(hapi: FhirClient, resource_type: str, key: str) -> list[dict[str, Any]]:
    return await hapi.search(resource_type, {"identifier": f"{RESOURCE_KEY_SYSTEM}|{key}"})


async def test_a_session_dated_after_today_is_refused_whatever_its_status(api, driver, today, hapi_client):
    """Attended, late, excused or a plain absence, three days ahead: 422 ``session-in-future`` with today's date and
    zone; the snapshot is unchanged and no Encounter reaches HAPI. A session before the hospital discharge is the
    rule ``session-before-hospital-discharge``."""
    key = await driver.submit(discharged_on=today - timedelta(days=3))
    await driver.accept(key, "adult-mh")
    await driver.attend(key, today - timedelta(days=1), session_id="seen")
    before = await _snapshot(api, key)
    ahead = today + timedelta(days=3)

    for status, wording in (
        ("attended", "an attended session"),
        ("late", "a late arrival"),
        ("excused", "an excused absence"),
        ("absent", "an absence"),
    ):
        response = await api.post(f"/api/referrals/{key}/sessions", json={"session": _session(status, ahead, status)})
        assert _refused(response, "session-in-future") == (
            f"session-in-future: {wording} cannot be dated after today ({today.isoformat()}, {ZONE}):"
            f" {ahead.isoformat()} has not come yet"
        )
    early = await api.post(
        f"/api/referrals/{key}/sessions", json={"session": _session("early", today - timedelta(days=4))}
    )
    _refused(early, "session-before-hospital-discharge")

    assert await _snapshot(api, key) == before
    for session_id in ("attended", "late", "early"):
        assert await _written(hapi_client, "Encounter", f"{key}/encounter/{session_id}") == []
    assert len(await _written(hapi_client, "Encounter", f"{key}/encounter/seen")) == 1
    today_is_fine = await api.post(f"/api/referrals/{key}/sessions", json={"session": _session("today", today)})
    assert today_is_fine.status_code == 200, today_is_fine.text


async def test_a_discharge_is_refused_ahead_of_today_before_acceptance_or_before_an_attended_session(
    api, driver, today, hapi_client
):
    """Accepted with the intake six days ago, seen four and two days ago. A discharge ten days ahead, before the
    acceptance, before the first attended session or between two attended ones: each a 422 naming its rule. The
    referral stays in treatment, the referrer's Task stays in progress, no aftercare plan is written; today's
    discharge then goes through."""
    key = await driver.submit(discharged_on=today - timedelta(days=8))
    intake = datetime.combine(today - timedelta(days=6), time(12), UTC)
    accepted = await api.post(
        f"/api/referrals/{key}/decision",
        json={"decision": "accept", "track_id": "adult-mh", "intake_at": intake.isoformat()},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["treatment_start"] == (today - timedelta(days=6)).isoformat()
    await driver.attend(key, today - timedelta(days=4), session_id="first")
    await driver.attend(key, today - timedelta(days=2), session_id="second")
    before = await _snapshot(api, key)

    async def discharge(day: date) -> httpx.Response:
        body = {"discharge": {"reason": "completed", "date": day.isoformat()}}
        return await api.post(f"/api/referrals/{key}/discharge", json=body)

    assert _refused(await discharge(today + timedelta(days=10)), "discharge-in-future") == (
        f"discharge-in-future: a discharge cannot be dated after today ({today.isoformat()}, {ZONE}):"
        f" {(today + timedelta(days=10)).isoformat()} has not come yet"
    )
    _refused(await discharge(today - timedelta(days=7)), "discharge-before-acceptance")
    assert _refused(await discharge(today - timedelta(days=5)), "discharge-before-first-session").endswith(
        f"before the first attended session ({(today - timedelta(days=4)).isoformat()})"
    )
    _refused(await discharge(today - timedelta(days=3)), "session-after-discharge")

    after = await _snapshot(api, key)
    assert after == before
    assert (after["phase"], after["discharge"], after["task_status"]) == ("in_treatment", None, "in-progress")
    [task] = await _written(hapi_client, "Task", f"{key}/task")
    assert task["status"] == "in-progress"
    assert await _written(hapi_client, "CarePlan", f"{key}/aftercare-plan") == []

    done = await discharge(today)
    assert done.status_code == 200, done.text
    assert done.json()["discharge"]["date"] == today.isoformat()


async def test_a_roster_reports_a_date_rule_per_entry(api, driver, today, hapi_client):
    """A roster for tomorrow: every entry refused with 422 ``session-in-future`` (207). Yesterday's roster: the
    referral that left hospital today is refused alone (``session-before-hospital-discharge``), the other is
    recorded."""
    seen = await driver.submit(discharged_on=today - timedelta(days=2))
    not_yet_out = await driver.submit(discharged_on=today)
    for key in (seen, not_yet_out):
        await driver.accept(key, "adult-mh")
    roster = {
        "kind": "group",
        "minutes": 180,
        "entries": [{"referral_id": seen, "status": "attended"}, {"referral_id": not_yet_out, "status": "absent"}],
    }

    tomorrow = await api.post(
        "/api/groups/dbt-skills/sessions", json={**roster, "date": str(today + timedelta(days=1))}
    )
    assert tomorrow.status_code == 207, tomorrow.text
    results = tomorrow.json()["results"]
    assert [(r["ok"], r["status"]) for r in results] == [(False, 422), (False, 422)]
    assert all(r["error"].startswith("session-in-future: ") for r in results)
    assert (await _snapshot(api, seen))["sessions"] == []

    yesterday = today - timedelta(days=1)
    mixed = await api.post("/api/groups/dbt-skills/sessions", json={**roster, "date": str(yesterday)})
    assert mixed.status_code == 207, mixed.text
    by_key = {r["referral_id"]: r for r in mixed.json()["results"]}
    assert (by_key[seen]["ok"], by_key[seen]["status"], by_key[seen]["phase"]) == (True, 200, "in_treatment")
    assert (by_key[not_yet_out]["ok"], by_key[not_yet_out]["status"]) == (False, 422)
    assert by_key[not_yet_out]["error"].startswith("session-before-hospital-discharge: ")
    assert len(await _written(hapi_client, "Encounter", f"{seen}/encounter/dbt-skills-{yesterday}")) == 1
    assert (await _snapshot(api, not_yet_out))["sessions"] == []
