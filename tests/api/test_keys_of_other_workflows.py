"""A key that names a workflow of another type (here a poll schedule's finished run) is no referral: every route
answers it as an unknown referral (404; the FHIR routes an OperationOutcome ``not-found``), never a 500.

Real parts: the Temporal dev server runs the poll Schedule (the time-skipping server has none), a real worker
runs the poll against the HAPI test server (for a program no referral there is addressed to, so it starts
nothing), and the API answers in-process.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from fhir_mappings.codes import BUSINESS_STATUS_SYSTEM
from referral_service.api.app import create_app
from referral_service.config.sources import SourceSettings
from referral_service.domain.program import Program
from referral_service.domain.referral import Identifier, ResourceRef
from referral_service.ehr.client import FhirClient
from referral_service.temporal_client.poll_schedules import ensure_poll_schedules
from referral_service.worker import create_worker
from tests.api.intake_checks import FHIR_JSON, expressions
from tests.api_server import service_settings
from tests.conftest import HAPI_SOURCE_ID

pytestmark = pytest.mark.timeout(300)
NPI = "http://hl7.org/fhir/sid/us-npi"
POLL_PATIENCE_S = 120.0


@dataclass(frozen=True)
class Service:
    api: httpx.AsyncClient
    poll_run: str  # the workflow id of one finished run of the poll Schedule


async def _finished_poll_run(client: Client, schedule_id: str) -> str:
    """The workflow id of the Schedule's first run, once that run has completed."""
    handle = client.get_schedule_handle(schedule_id)
    deadline = time.monotonic() + POLL_PATIENCE_S
    while not (actions := (await handle.describe()).info.recent_actions):
        assert time.monotonic() < deadline, f"the schedule {schedule_id} started no poll"
        await asyncio.sleep(0.5)
    run_id = actions[0].action.workflow_id
    await client.get_workflow_handle(run_id).result()  # a poll ends in seconds
    return run_id


@pytest_asyncio.fixture(scope="module")
async def service(temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient, program: Program):
    """The API and its worker; the worker also runs a poll Schedule of the HAPI server, for a program of its own
    (a fresh NPI: nothing in HAPI is addressed to it). The Schedule is deleted once a run has finished."""
    settings = service_settings(hapi_base_url, "other-types")
    poll_source = f"polled-{uuid.uuid4().hex[:8]}"
    polled = settings.model_copy(
        update={
            "sources": (SourceSettings(id=poll_source, base_url=hapi_base_url, poll=True, poll_interval_seconds=1),)
        }
    )
    nobody = ResourceRef(resource_type="Organization", identifier=Identifier(system=NPI, value=uuid.uuid4().hex[:10]))
    client = temporal_env.client
    app = create_app(settings, client)
    async with (
        create_worker(
            client,
            settings.task_queue,
            {HAPI_SOURCE_ID: hapi_client, poll_source: hapi_client},
            database=app.state.database,
        ),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as api,
    ):
        [schedule_id] = await ensure_poll_schedules(client, polled, program.model_copy(update={"organization": nobody}))
        try:
            run = await _finished_poll_run(client, schedule_id)
        finally:
            await client.get_schedule_handle(schedule_id).delete()
        yield Service(api, run)


def _no_such_referral(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.json() == {"detail": "no such referral"}


def _fhir_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [issue["code"] for issue in outcome["issue"]] == ["not-found"]
    assert expressions(outcome) == ["Task.id"]


async def test_the_run_is_a_finished_poll_not_a_referral(service: Service, temporal_env: WorkflowEnvironment) -> None:
    """What the other tests stand on: the key names a completed workflow, of the poll's type."""
    described = await temporal_env.client.get_workflow_handle(service.poll_run).describe()
    assert (described.workflow_type, described.status.name if described.status else None) == (
        "SourcePollWorkflow",
        "COMPLETED",
    )


async def test_reading_it_as_a_referral_answers_404(service: Service) -> None:
    _no_such_referral(await service.api.get(f"/api/referrals/{service.poll_run}"))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("decision", {"decision": "accept", "track_id": "adult-mh"}),
        (
            "sessions",
            {"session": {"session_id": "s1", "date": "2026-11-21", "kind": "group", "minutes": 60, "attended": True}},
        ),
        ("discharge", {"discharge": {"reason": "completed", "date": "2026-11-21"}}),
        ("follow-ups", {"day": 7, "reached": True}),
    ],
)
async def test_an_update_sent_to_it_answers_404(service: Service, path: str, body: dict[str, Any]) -> None:
    _no_such_referral(await service.api.post(f"/api/referrals/{service.poll_run}/{path}", json=body))


async def test_cancelling_it_answers_404(service: Service) -> None:
    _no_such_referral(await service.api.post(f"/api/referrals/{service.poll_run}/cancel", json={}))


async def test_its_referral_page_is_not_found(service: Service) -> None:
    page = await service.api.get(f"/referrals/{service.poll_run}")
    assert page.status_code == 404, page.text
    assert "no such referral" in page.text


async def test_reading_its_task_answers_an_operation_outcome_not_found(service: Service) -> None:
    _fhir_not_found(await service.api.get(f"/fhir/Task/{service.poll_run}"))


async def test_cancelling_its_task_answers_an_operation_outcome_not_found(service: Service) -> None:
    task = {
        "resourceType": "Task",
        "id": service.poll_run,
        "status": "requested",
        "intent": "order",
        "businessStatus": {"coding": [{"system": BUSINESS_STATUS_SYSTEM, "code": "cancellation-requested"}]},
    }
    _fhir_not_found(await service.api.put(f"/fhir/Task/{service.poll_run}", json=task, headers=FHIR_JSON))
