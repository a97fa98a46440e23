"""``POST /api/referrals/{id}/team``: reassigning care-team roles through the API, on the time-skipping server
with a real worker writing to HAPI; refusals answer JSON a person can act on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.api.app import create_app
from referral_service.ehr.client import FhirClient
from referral_service.worker import create_worker
from tests.api.test_case_manager_api import ADA, _json_error, _key, _phase_reached, _submit, _written
from tests.api_server import service_settings
from tests.conftest import HAPI_SOURCE_ID
from tests.referrals import referral_bundle

TO_CHEN = {"members": {"primary_therapist": "lmft-chen"}}


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, hapi_client: FhirClient, hapi_base_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = service_settings(hapi_base_url, "team")
    app = create_app(settings, time_skipping_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
        create_worker(
            time_skipping_env.client, settings.task_queue, {HAPI_SOURCE_ID: hapi_client}, database=app.state.database
        ),
    ):
        yield client


async def test_reassigning_through_the_api_changes_the_team_and_says_why_when_it_cannot(api, hapi_client):
    unknown = f"{HAPI_SOURCE_ID}.no-such-order.{uuid.uuid4().hex[:10]}"
    assert _json_error(await api.post(f"/api/referrals/{unknown}/team", json=TO_CHEN), 404) == "no such referral"
    bundle = referral_bundle(ADA)
    key = _key(bundle)
    assert (await _submit(api, bundle)).status_code == 201
    await _phase_reached(api, key, "screening")
    early = await api.post(f"/api/referrals/{key}/team", json=TO_CHEN)
    assert _json_error(early, 409) == (
        "the care team is reassigned between acceptance and discharge, not in phase screening"
    )
    accepted = await api.post(f"/api/referrals/{key}/decision", json={"decision": "accept", "track_id": "sud"})
    assert accepted.status_code == 200, accepted.text

    changed = await api.post(
        f"/api/referrals/{key}/team",
        json={"members": {"primary_therapist": "ladc-brooks", "peer_specialist": "peer-johnson", "nurse": "rn-murphy"}},
    )
    assert changed.status_code == 200, changed.text
    state = changed.json()
    assert state["team"]["members"]["primary_therapist"]["id"] == "ladc-brooks"
    assert len(state["team_history"]) == 1  # every role already held by the member named: no change
    to_lindqvist = await api.post(f"/api/referrals/{key}/team", json={"members": {"prescriber": "np-lindqvist"}})
    assert to_lindqvist.status_code == 200, to_lindqvist.text
    state = to_lindqvist.json()
    assert [t["members"]["prescriber"]["id"] for t in state["team_history"]] == ["dr-okafor", "np-lindqvist"]
    assert state["timeline"][-1]["detail"] == "prescriber: dr-okafor -> np-lindqvist"
    [team] = await _written(hapi_client, "CareTeam", f"{key}/careteam")
    assert "Erik Lindqvist, PMHNP" in [p["member"]["display"] for p in team["participant"]]

    refusals = {
        "lmft-chen does not work on track sud": TO_CHEN,
        "no staff member 'dr-nobody' on the program's roster": {"members": {"prescriber": "dr-nobody"}},
        "cm-patel is a case_manager, not a nurse": {"members": {"nurse": "cm-patel"}},
    }
    for message, body in refusals.items():
        assert _json_error(await api.post(f"/api/referrals/{key}/team", json=body), 409) == message
    for body in ({"members": {}}, {"members": {"therapist": "lmft-chen"}}, {"members": {"nurse": "rn murphy"}}):
        malformed = await api.post(f"/api/referrals/{key}/team", json=body)
        assert malformed.status_code == 422, malformed.text
        assert all(error["loc"][:2] == ["body", "members"] for error in malformed.json()["detail"])

    assert (await api.post(f"/api/referrals/{key}/cancel", json={})).status_code == 202
    await _phase_reached(api, key, "cancelled")
    ended = await api.post(f"/api/referrals/{key}/team", json=TO_CHEN)
    assert _json_error(ended, 409) == "this referral has ended (phase cancelled) and takes no more changes"
