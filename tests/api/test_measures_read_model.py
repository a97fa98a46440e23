"""``GET /api/measures`` answers from the read model: real referrals driven through the real API, worker,
Temporal and HAPI show up in the measures, and no request for them queries a workflow (the API's Temporal
client counts its queries)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.ehr.client import FhirClient
from tests.api_driver import Api
from tests.api_server import running_api
from tests.polling import eventually
from tests.query_counter import counting_client

pytestmark = pytest.mark.timeout(300)


async def test_measures_count_real_referrals_without_querying_a_workflow(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> None:
    start = date(2003, 1, 6) + timedelta(days=random.randrange(6000))  # noqa: S311 - a period of this test's own
    client, counter = counting_client(temporal_env.client)
    period = {"from": start.isoformat(), "to": (start + timedelta(days=6)).isoformat()}
    async with (
        running_api(temporal_env, hapi_base_url, hapi_client, queue_prefix="measures", client=client) as url,
        httpx.AsyncClient(base_url=url, timeout=120) as http,
    ):
        api = Api(http)
        seen_day_2, never_seen = await api.submit(start), await api.submit(start + timedelta(days=1))
        for key in (seen_day_2, never_seen):
            await api.accept(key, "adult-mh")
        await api.attend(seen_day_2, start + timedelta(days=2), session_id="s1")

        async def settled() -> dict[str, Any] | None:
            answer = await http.get("/api/measures", params=period)
            assert answer.status_code == 200, answer.text
            report: dict[str, Any] = answer.json()
            return report if report["overall"]["first_sessions"] == 1 else None

        before = counter.queries
        report = await eventually(settled, "the attended session in the measures", patience_s=60)
        assert counter.queries == before, "the measures queried a workflow"
        page = await http.get("/measures", params=period)
        assert counter.queries == before, "the measures page queried a workflow"

    assert page.status_code == 200
    assert 'data-field="accepted">2<' in page.text
    assert report["overall"]["referrals"] == 2
    assert report["overall"]["follow_up_7_days"] == {"numerator": 1, "denominator": 2, "pending": 0, "rate": 0.5}
    assert report["overall"]["median_days_to_first_session"] == 2.0
    assert (report["referrals_scanned"], report["unreadable"], report["scan_limit_reached"]) == (2, 0, False)
