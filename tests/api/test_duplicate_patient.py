"""Duplicate-patient check at intake, and the inbox's flags for the intake coordinator, against the real
Temporal dev server (visibility) and HAPI FHIR.

A referral whose patient matches an open referral by identifier, or by name plus birth date, is flagged for
the intake coordinator (``possible_duplicates`` in its snapshot, a timeline entry), never merged; the search
attribute that makes the match possible holds keyed hashes, no PHI. Ada's name and birth date are the same in
every test of the session, so other tests' open referrals may be flagged too: the assertions here are about
this test's own referrals being in (or out of) the list.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.api.app import create_app
from referral_service.config import Settings
from referral_service.ehr.client import FhirClient
from referral_service.worker import create_worker
from tests.api.intake_checks import resource_of_type
from tests.api.test_fhir_intake import ADA, _key, _phi, _post
from tests.api_server import service_settings
from tests.conftest import HAPI_SOURCE_ID
from tests.polling import eventually
from tests.referrals import referral_bundle
from workflows import search_attributes


@pytest.fixture
def settings(hapi_base_url: str) -> Settings:
    return service_settings(hapi_base_url, "duplicates")


@pytest.fixture
async def api(
    settings: Settings, temporal_env: WorkflowEnvironment, hapi_client: FhirClient
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process and a worker on its task queue, so snapshots can be read."""
    app = create_app(settings, temporal_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
        create_worker(
            temporal_env.client, settings.task_queue, {HAPI_SOURCE_ID: hapi_client}, database=app.state.database
        ),
    ):
        yield client


async def _submit_visible(api: httpx.AsyncClient, temporal_env: WorkflowEnvironment, bundle: dict[str, Any]) -> str:
    """Submit, then wait until visibility and the read model list the referral (the workflow writes its row
    once it has run its first step)."""
    response = await _post(api, "/fhir", bundle)
    assert response.status_code == 201, response.text
    key = _key(bundle)

    async def listed() -> bool | None:
        found = [run.id async for run in temporal_env.client.list_workflows(f"WorkflowId = '{key}'")]
        rows = (await api.get("/api/referrals", params={"q": key})).json()
        return True if found and [row["key"] for row in rows] == [key] else None

    await eventually(listed, f"{key} in visibility and the read model")
    return key


async def _snapshot(api: httpx.AsyncClient, key: str) -> dict[str, Any]:
    async def read() -> dict[str, Any] | None:
        response = await api.get(f"/api/referrals/{key}")
        return response.json() if response.status_code == 200 else None

    snapshot: dict[str, Any] = await eventually(read, f"the snapshot of {key}")
    return snapshot


def _same_patient_new_order(bundle: dict[str, Any]) -> dict[str, Any]:
    """The same Bundle (same patient, same MRN) with another order number: a second referral."""
    again = copy.deepcopy(bundle)
    resource_of_type(again, "ServiceRequest")["identifier"][0]["value"] += "-second"
    return again


async def test_same_mrn_is_flagged_with_the_open_referral(api, temporal_env):
    """The same patient referred again while the first referral is open: flagged with the first's id."""
    first_bundle = referral_bundle(ADA)
    first = await _submit_visible(api, temporal_env, first_bundle)

    second = await _submit_visible(api, temporal_env, _same_patient_new_order(first_bundle))

    snapshot = await _snapshot(api, second)
    assert first in snapshot["possible_duplicates"]
    assert second not in snapshot["possible_duplicates"]
    [entry] = [e for e in snapshot["timeline"] if e["event"] == "possible duplicate patient"]
    assert first in entry["detail"]
    # The first referral is not changed by the second: nothing is merged.
    assert second not in (await _snapshot(api, first))["possible_duplicates"]
    # The coordinator sees the flag in the inbox, on the second referral's row, linking to the first.
    inbox = (await api.get("/inbox")).text
    row = inbox[inbox.index(f'data-referral="{second}"') :].split("</tr>", 1)[0]
    assert f'possible duplicate of <a href="/referrals/{first}">{first}</a>' in row


async def test_same_name_and_birth_date_with_another_mrn_is_flagged(api, temporal_env):
    """Another MRN (another hospital's chart, say) but the same name and birth date: flagged too."""
    first_bundle = referral_bundle(ADA)
    first = await _submit_visible(api, temporal_env, first_bundle)
    other_chart = referral_bundle(ADA)
    patient = resource_of_type(other_chart, "Patient")
    assert patient["identifier"][0]["value"] not in _phi(first_bundle)  # a fresh MRN
    patient["name"][0]["family"] = f"  {patient['name'][0]['family'].upper()} "

    second = await _submit_visible(api, temporal_env, other_chart)

    assert first in (await _snapshot(api, second))["possible_duplicates"]


async def test_an_unrelated_patient_is_not_flagged(api, temporal_env):
    """A patient sharing neither an identifier nor name and birth date with an open referral: no flag."""
    await _submit_visible(api, temporal_env, referral_bundle(ADA))
    unrelated = referral_bundle(ADA)
    resource_of_type(unrelated, "Patient")["name"][0]["family"] = f"Unrelated{uuid.uuid4().hex[:8]}"

    key = await _submit_visible(api, temporal_env, unrelated)

    snapshot = await _snapshot(api, key)
    assert snapshot["possible_duplicates"] == []
    assert "possible duplicate patient" not in [e["event"] for e in snapshot["timeline"]]


async def test_match_attribute_holds_no_patient_data_and_survives_upserts(api, temporal_env):
    """The raw search attributes hold no name, MRN or birth date; the match keys stay after phase changes."""
    bundle = referral_bundle(ADA)
    key = await _submit_visible(api, temporal_env, bundle)
    handle = temporal_env.client.get_workflow_handle(key)

    async def screening() -> Any:
        description = await handle.describe()
        phase = description.typed_search_attributes.get(search_attributes.PHASE)
        return description if phase == "screening" else None

    description = await eventually(screening, f"{key} to reach screening")

    keys = description.typed_search_attributes.get(search_attributes.PATIENT_MATCH)
    assert keys is not None
    assert len(keys) == 2  # the MRN, and name plus birth date
    indexed = description.raw_description.workflow_execution_info.search_attributes.indexed_fields
    raw = " ".join(payload.data.decode() for payload in indexed.values())
    assert all(k in raw for k in keys)
    leaked = [value for value in _phi(bundle) if value in raw]
    assert leaked == [], f"search attributes carry patient data: {leaked}"


async def test_a_referral_discharged_weeks_ago_shows_its_step_down_concern_in_the_inbox(api, temporal_env):
    """Not a duplicate but worth the coordinator's eye: the inbox names why it may not be a step-down."""
    long_ago = referral_bundle(ADA, discharged_on=date.today() - timedelta(days=40))
    key = await _submit_visible(api, temporal_env, long_ago)

    inbox = (await api.get("/inbox")).text
    row = inbox[inbox.index(f'data-referral="{key}"') :].split("</tr>", 1)[0]
    assert '<span class="flag flag-eligibility">discharged more than 30 days ago</span>' in row
