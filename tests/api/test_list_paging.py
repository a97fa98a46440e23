"""``GET /api/referrals``: the overdue filter, paging and search, from the read model a real worker writes
(on the Temporal dev server, with HAPI).

Each test's referrals come from a source id of its own, so other tests' referrals on the shared server never
blur the counts."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.api.app import create_app
from referral_service.api.referral_routes import NEXT_PAGE_HEADER
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from referral_service.worker import create_worker
from tests.api_server import service_settings
from tests.workflows.stories import ReferralHandle, start_referral
from workflows.referral import ReferralWorkflow
from workflows.referral_types import ScreeningDecisionInput

VISIBILITY_PATIENCE_S = 20.0  # the read model lags a workflow's change by a moment


@pytest.fixture
def source_id() -> str:
    return f"list-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def started(
    temporal_env: WorkflowEnvironment, hapi_client: FhirClient, program: Program, source_id: str, hapi_base_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Callable[..., Awaitable[ReferralHandle]]]]:
    """The API and a worker on a fresh task queue; a starter of referrals from this test's source, all ended
    when the test ends."""
    settings = service_settings(hapi_base_url, "list")
    handles: list[ReferralHandle] = []

    async def start(**kwargs: Any) -> ReferralHandle:
        handle = await start_referral(
            temporal_env, hapi_client, program, settings.task_queue, source_id=source_id, **kwargs
        )
        handles.append(handle)
        return handle

    app = create_app(settings, temporal_env.client)
    async with (
        create_worker(temporal_env.client, settings.task_queue, {source_id: hapi_client}, database=app.state.database),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as api,
    ):
        yield api, start
        for handle in handles:
            await handle.terminate("test ended")


async def _listed(api: httpx.AsyncClient, params: dict[str, str], want: set[str]) -> set[str]:
    """The keys one list request returns once visibility has caught up with ``want`` (or its last answer)."""
    deadline = time.monotonic() + VISIBILITY_PATIENCE_S
    while True:
        response = await api.get("/api/referrals", params={**params, "limit": "1000"})
        assert response.status_code == 200, response.text
        got = {row["key"] for row in response.json()}
        if got == want or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.25)


async def test_overdue_selects_referrals_whose_next_deadline_has_passed(started, source_id):
    """Received two days ago and still unanswered: its 24-hour response deadline has passed. Received now: the
    deadline is ahead. Waitlisted: no deadline at all, so not overdue either."""
    api, start = started
    late = await start(received_ago=timedelta(days=2))
    fresh = await start()
    waiting = await start()
    await waiting.execute_update(ReferralWorkflow.decide, ScreeningDecisionInput(decision="waitlist"))
    everyone = {late.id, fresh.id, waiting.id}
    assert await _listed(api, {"source": source_id}, everyone) == everyone

    assert await _listed(api, {"source": source_id, "overdue": "true"}, {late.id}) == {late.id}
    assert await _listed(api, {"source": source_id, "overdue": "false"}, {fresh.id, waiting.id}) == {
        fresh.id,
        waiting.id,
    }
    [row] = (await api.get("/api/referrals", params={"source": source_id, "overdue": "true"})).json()
    assert row["next_deadline"] is not None
    assert (row["phase"], row["at_risk"]) == ("screening", True)


async def test_paging_with_a_small_limit_returns_every_referral_exactly_once(started, source_id):
    api, start = started
    keys = {(await start()).id for _ in range(5)}
    assert await _listed(api, {"source": source_id}, keys) == keys

    pages: list[list[str]] = []
    params = {"source": source_id, "limit": "2"}
    while True:
        response = await api.get("/api/referrals", params=params)
        assert response.status_code == 200, response.text
        pages.append([row["key"] for row in response.json()])
        token = response.headers.get(NEXT_PAGE_HEADER)
        if token is None:
            break
        params = {**params, "page_token": token}
        assert len(pages) <= 5, "paging does not end"

    seen = [key for page in pages for key in page]
    assert sorted(seen) == sorted(keys)  # each once: no referral skipped, none repeated
    assert all(len(page) <= 2 for page in pages)
    assert [len(page) for page in pages][:2] == [2, 2]


async def test_a_page_token_the_list_did_not_give_or_for_other_filters_answers_400(started, source_id):
    """Refused at once: a made-up token, and a real one sent with other filters than the page it came from."""
    api, start = started
    keys = {(await start()).id for _ in range(2)}
    assert await _listed(api, {"source": source_id}, keys) == keys
    first = await api.get("/api/referrals", params={"source": source_id, "limit": "1"})
    token = first.headers[NEXT_PAGE_HEADER]

    for params in ({"page_token": "bm90LWEtdG9rZW4"}, {"source": source_id, "at_risk": "true", "page_token": token}):
        response = await api.get("/api/referrals", params=params)
        assert response.status_code == 400, response.text
        assert response.json()["detail"] == "page_token is not one this list gave for these filters; start again"


async def test_q_finds_a_referral_by_a_word_of_the_patient_name_or_by_its_order_number(started, source_id):
    """Each test's Ada has the same name, so the name narrows to this source; the order number to one referral."""
    api, start = started
    ada, other = await start(), await start()
    both = {ada.id, other.id}
    assert await _listed(api, {"source": source_id}, both) == both

    for word in ("ada", "TESTPATIENT", "Testpatient Ada"):
        assert await _listed(api, {"source": source_id, "q": word}, both) == both, word
    assert await _listed(api, {"source": source_id, "q": "Testpat"}, set()) == set()  # whole words only
    order_number = ada.id.split(".")[1]  # <source>.<order number>.<hash>
    assert await _listed(api, {"q": order_number}, {ada.id}) == {ada.id}
    [row] = (await api.get("/api/referrals", params={"q": order_number})).json()
    assert row["patient"]["family"] == "Testpatient"
    assert row["patient"]["given"] == ["Ada"]
