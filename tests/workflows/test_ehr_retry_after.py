"""An EHR that answers ``429``/``503`` with ``Retry-After`` (our HAPI test server's throttle switch, test only): the
receipt Task's write is handed back to Temporal and retried no sooner than the EHR asked (longer than the retry
policy's first interval, so the policy alone would come back too early), and it lands once. Two things wait it out,
each enough alone: the source's throttle holds its calls off, and the activity's retry is delayed by it
(tests/unit/test_ehr_failures.py pins that one); without both the write is retried too early. Real Temporal dev
server (real time: the wait is the behaviour under test), real worker, real HAPI."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from referral_service.config.sources import SourceSettings
from referral_service.ehr.client import FhirClient, FhirExchange
from referral_service.worker import create_worker
from tests.conftest import HAPI_SOURCE_ID
from tests.polling import eventually
from tests.workflows.stories import end_leftovers, start_referral, written
from workflows.referral_writes import EHR_RETRY

RETRY_AFTER_S = 5


async def throttle(hapi_base_url: str, status: int, writes: int) -> None:
    url = hapi_base_url.removesuffix("/fhir") + "/admin/refusals/throttle"
    async with httpx.AsyncClient(timeout=10) as admin:
        answer = await admin.post(url, json={"status": status, "retryAfterSeconds": RETRY_AFTER_S, "writes": writes})
    answer.raise_for_status()
    assert answer.json() == {"writes": writes}, "the HAPI server is not the one built from this checkout"


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_waited_out_and_the_write_lands_once(
    temporal_env, hapi_client, hapi_base_url, program, status
):
    assert EHR_RETRY.initial_interval.total_seconds() < RETRY_AFTER_S
    seen: list[tuple[float, FhirExchange]] = []
    source = SourceSettings(id=HAPI_SOURCE_ID, base_url=hapi_base_url)
    queue = f"referrals-{uuid.uuid4().hex[:8]}"
    async with (
        FhirClient(source.connection(), observer=lambda e: seen.append((time.monotonic(), e))) as ehr,
        create_worker(temporal_env.client, queue, {HAPI_SOURCE_ID: ehr}),
    ):
        await throttle(hapi_base_url, status, writes=1)
        try:
            handle = await start_referral(temporal_env, hapi_client, program, queue)
            [task] = await eventually(lambda: written(hapi_client, "Task", f"{handle.id}/task"), "the receipt Task")
        finally:
            await throttle(hapi_base_url, 429, writes=0)
            await end_leftovers(queue)
    puts = [(at, e.status) for at, e in seen if e.method == "PUT" and e.url.startswith("Task?")]
    assert [s for _, s in puts[:2]] == [status, 201]
    assert puts[1][0] - puts[0][0] >= RETRY_AFTER_S
    assert task["meta"]["versionId"] == "1"  # one write landed: the refused one made nothing
