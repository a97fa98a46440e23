"""Assessments through the case-manager API: each score becomes one Observation in the EHR, once.

Real uvicorn API, a real worker on the time-skipping Temporal server, the real HAPI server (validation on).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from tests.api_driver import Api
from tests.api_server import driven_api
from tests.program_day import program_today


@pytest.fixture
async def driver(time_skipping_env, hapi_base_url, hapi_client) -> AsyncIterator[Api]:
    async with driven_api(time_skipping_env, hapi_base_url, hapi_client, queue_prefix="assessments") as api:
        yield api


@pytest.fixture
def api(driver: Api) -> httpx.AsyncClient:
    return driver.http


async def _accepted(driver: Api) -> str:
    """Ada's referral submitted and accepted into adult-mh; the referral id."""
    key = await driver.submit()
    await driver.accept(key, "adult-mh")
    return key


def _versions(state: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {key: (w["resource_type"], w["id"], w["version"]) for key, w in state["writes"].items()}


async def test_two_phq9_scores_become_exactly_two_observations_even_when_sent_twice(
    api, driver, time_skipping_env, hapi_client
):
    """Each score recorded twice (a client retrying): two Observations in HAPI, each at version 1, listed by
    the treatment plan."""
    key = await _accepted(driver)
    today = program_today(await time_skipping_env.get_current_time())
    scores = {"phq9-intake": (today - timedelta(days=1), 17), "phq9-week1": (today, 12)}
    answers = []
    for assessment_id, (day, score) in scores.items():
        body = {"assessment": {"assessment_id": assessment_id, "instrument": "PHQ-9", "score": score, "date": str(day)}}
        for _ in range(2):  # a client retrying after a lost answer
            answer = await api.post(f"/api/referrals/{key}/assessments", json=body)
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
    state = answers[-1]
    assert [(a["assessment_id"], a["score"]) for a in state["assessments"]] == [("phq9-intake", 17), ("phq9-week1", 12)]
    # The repeat found the same Observation at the same version.
    assert _versions(answers[-2]) == _versions(state)

    keys = [f"{key}/observation/{assessment_id}" for assessment_id in scores]
    observations = await hapi_client.search(
        "Observation", {"identifier": ",".join(f"{RESOURCE_KEY_SYSTEM}|{k}" for k in keys)}
    )
    by_key = {o["identifier"][0]["value"]: o for o in observations}
    assert sorted(by_key) == sorted(keys)
    for assessment_id, (day, score) in scores.items():
        observation = by_key[f"{key}/observation/{assessment_id}"]
        assert (observation["status"], observation["valueInteger"]) == ("final", score)
        assert observation["effectiveDateTime"] == str(day)
        assert observation["code"]["coding"][0] == {
            "system": "http://loinc.org",
            "code": "44261-6",
            "display": "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
        }
        assert observation["category"][0]["coding"][0]["code"] == "survey"
        assert observation["basedOn"][0]["type"] == "ServiceRequest"
        assert observation["meta"]["versionId"] == "1"
        write = state["writes"][f"{key}/observation/{assessment_id}"]
        assert (write["resource_type"], write["id"]) == ("Observation", observation["id"])

    # The treatment plan lists the scores once it is next written (here: revoked when the referrer cancels).
    assert (await api.post(f"/api/referrals/{key}/cancel", json={})).status_code == 202
    for _ in range(300):
        if (await api.get(f"/api/referrals/{key}")).json()["phase"] == "cancelled":
            break
        await asyncio.sleep(0.1)
    [plan] = await hapi_client.search("CarePlan", {"identifier": f"{RESOURCE_KEY_SYSTEM}|{key}/careplan"})
    assert plan["status"] == "revoked"
    listed = {ref.get("reference") for ref in plan["supportingInfo"]}
    assert {f"Observation/{o['id']}" for o in observations} <= listed


async def test_impossible_assessments_are_refused_with_the_rule_broken(api, driver, time_skipping_env, hapi_client):
    """Out of range, dated tomorrow, an unknown instrument or before acceptance: refused saying why, nothing
    written."""
    bundle_key = await _accepted(driver)
    today = program_today(await time_skipping_env.get_current_time())

    def body(**change: Any) -> dict[str, Any]:
        assessment = {"assessment_id": "a1", "instrument": "GAD-7", "score": 5, "date": str(today), **change}
        return {"assessment": assessment}

    too_high = await api.post(f"/api/referrals/{bundle_key}/assessments", json=body(score=22))
    assert too_high.status_code == 409
    assert too_high.json()["detail"] == "a GAD-7 score is between 0 and 21, not 22"
    tomorrow = await api.post(
        f"/api/referrals/{bundle_key}/assessments", json=body(date=str(today + timedelta(days=1)))
    )
    assert tomorrow.status_code == 422, tomorrow.text  # a clinical date rule, named first
    assert tomorrow.json()["detail"] == (
        f"assessment-in-future: an assessment cannot be dated after today ({today}, America/New_York):"
        f" {today + timedelta(days=1)} has not come yet"
    )
    unknown = await api.post(f"/api/referrals/{bundle_key}/assessments", json=body(instrument="BDI-II"))
    assert unknown.status_code == 422
    assert [e["loc"] for e in unknown.json()["detail"]] == [["body", "assessment", "instrument"]]
    unscreened = await driver.submit()
    early = await api.post(f"/api/referrals/{unscreened}/assessments", json=body())
    assert early.status_code == 409
    assert early.json()["detail"].startswith("assessments are recorded from acceptance to discharge, not in phase")
    state = (await api.get(f"/api/referrals/{bundle_key}")).json()
    assert state["assessments"] == []
    assert (
        await hapi_client.search("Observation", {"identifier": f"{RESOURCE_KEY_SYSTEM}|{bundle_key}/observation/a1"})
        == []
    )
