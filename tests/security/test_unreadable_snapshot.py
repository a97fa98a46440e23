"""A referral whose state this API cannot open (its snapshot comes back sealed under a key the API's ring no
longer holds, as during a key rotation that dropped it too early) degrades its own row, never the page:
``/inbox`` and ``/caseload`` answer 200 for everyone, show it as unreadable and count it (the measures read
no snapshot: they come from the read model's facts, which hold no patient data);
its own page and ``GET /api/referrals/{key}`` say it cannot be read (503), never a 500.

Real parts: the API (uvicorn, auth on, the loopback OpenID provider) and its worker, the Temporal dev server,
the HAPI test server; the sealed referrals run on a second real worker whose ring holds only the retired key.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from referral_service.codec import KeyRing, data_converter
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from referral_service.store.database import open_database, sqlite_url
from referral_service.worker import create_worker
from tests.conftest import HAPI_SOURCE_ID
from tests.polling import eventually
from tests.security import surfaces
from tests.security.surfaces import STAFF_ROLES, Stack
from tests.workflows.stories import start_referral
from workflows.referral import ReferralWorkflow
from workflows.referral_types import ScreeningDecisionInput

pytestmark = pytest.mark.timeout(300)
provider, stack = surfaces.provider, surfaces.stack  # the module's fixtures


@dataclasses.dataclass(frozen=True)
class Sealed:
    screening: str  # an inbox row
    accepted: str  # a caseload row


@pytest_asyncio.fixture(scope="module")
async def sealed(
    stack: Stack, temporal_env: WorkflowEnvironment, program: Program, hapi_client: FhirClient
) -> AsyncIterator[Sealed]:
    retired = KeyRing.from_base64({"retired-1": KeyRing.new_key()}, "retired-1")
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        namespace=temporal_env.client.namespace,
        data_converter=data_converter(retired),
    )
    queue = f"sealed-{uuid.uuid4().hex[:8]}"
    database = open_database(sqlite_url(stack.database))  # the API's read model: rows sealed under the retired key
    async with create_worker(client, queue, {HAPI_SOURCE_ID: hapi_client}, program, database=database):
        made = Sealed(
            screening=(await start_referral(temporal_env, hapi_client, program, queue, client=client)).id,
            accepted=(await start_referral(temporal_env, hapi_client, program, queue, client=client)).id,
        )
        track = program.tracks[0].id
        accept = ScreeningDecisionInput(decision="accept", track_id=track)
        await client.get_workflow_handle_for(ReferralWorkflow.run, made.accepted).execute_update(
            ReferralWorkflow.decide, accept
        )
        yield made
        for key in dataclasses.astuple(made):
            await client.get_workflow_handle(key).terminate("test ended")
    database.dispose()


async def _get(stack: Stack, path: str, role: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        return await http.get(path, headers=stack.bearer(role))


@pytest.mark.parametrize("role", ["intake-coordinator", "program-admin"])
async def test_the_inbox_shows_the_sealed_referral_as_unreadable(stack: Stack, sealed: Sealed, role: str) -> None:
    async def listed() -> httpx.Response | None:
        page = await _get(stack, "/inbox", role)
        assert page.status_code == 200, page.text[:300]
        return page if f'data-referral="{sealed.screening}"' in page.text else None  # the index caught up

    page = await eventually(listed, "the sealed referral in the inbox")
    row = page.text.split(f'data-referral="{sealed.screening}"', 1)[1].split("</tr>", 1)[0]
    assert "data-unreadable" in row
    assert 'data-field="unreadable"' in page.text


@pytest.mark.parametrize("role", ["case-manager", "clinician"])
async def test_the_caseload_shows_it_and_counts_it_unreadable(stack: Stack, sealed: Sealed, role: str) -> None:
    async def listed() -> httpx.Response | None:
        page = await _get(stack, "/caseload", role)
        assert page.status_code == 200, page.text[:300]
        return page if f'data-referral="{sealed.accepted}"' in page.text else None

    page = await eventually(listed, "the sealed referral on the caseload")
    assert 'data-field="unreadable"' in page.text


@pytest.mark.parametrize("role", STAFF_ROLES)
async def test_its_own_page_and_json_say_it_cannot_be_read(stack: Stack, sealed: Sealed, role: str) -> None:
    answer = await _get(stack, f"/api/referrals/{sealed.accepted}", role)
    assert answer.status_code == 503, answer.text[:300]
    assert "cannot be read" in answer.json()["detail"]
    page = await _get(stack, f"/referrals/{sealed.accepted}", role)
    assert page.status_code == 503
    assert "cannot be read" in page.text
