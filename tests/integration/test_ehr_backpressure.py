"""Back-pressure toward an EHR, seen at the real HAPI test server: its in-flight gauge (``/admin/load``, test only)
shows a burst through a limited client never has more calls at the server than ``max_in_flight``, while the same
burst through an unlimited client does."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from referral_service.config.sources import SourceSettings
from referral_service.ehr.client import FhirClient
from referral_service.ehr.source import SourceConfig

BURST = 16
SYSTEM = "urn:iop-test:burst"


def note(value: str) -> dict[str, Any]:
    return {"resourceType": "Basic", "identifier": [{"system": SYSTEM, "value": value}], "code": {"text": "burst"}}


async def peak_in_flight(hapi_base_url: str, client: FhirClient) -> int:
    """The most FHIR calls HAPI had at once while ``client`` sent ``BURST`` conditional writes together."""
    gauge = hapi_base_url.removesuffix("/fhir") + "/admin/load"
    run = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(timeout=10) as admin:
        (await admin.post(gauge)).raise_for_status()
        writes = [client.update_conditional(note(f"{run}-{n}"), f"identifier={SYSTEM}|{run}-{n}") for n in range(BURST)]
        results = await asyncio.gather(*writes)
        load = (await admin.get(gauge)).json()
    assert all(result.created for result in results)
    assert load["requests"] >= BURST
    return int(load["peakInFlight"])


async def test_a_burst_keeps_within_max_in_flight_at_the_server(hapi_base_url: str):
    limited = SourceSettings.model_validate(
        {
            "id": "burst",
            "base_url": hapi_base_url,
            "timeout_seconds": 120,
            "limits": {"max_in_flight": 3, "per_second": 1000, "burst": 1000},
        }
    )
    async with FhirClient(SourceConfig(id="warm-up", base_url=hapi_base_url, timeout_seconds=120)) as first:
        await first.update_conditional(note("warm-up"), f"identifier={SYSTEM}|warm-up")  # a cold HAPI's first write
    async with FhirClient(SourceConfig(id="unlimited", base_url=hapi_base_url, timeout_seconds=120)) as unlimited:
        assert await peak_in_flight(hapi_base_url, unlimited) > 3  # the gauge sees a burst when there is one
    async with FhirClient(limited.connection()) as client:
        assert 1 <= await peak_in_flight(hapi_base_url, client) <= 3
