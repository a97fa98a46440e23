"""Driving referrals through the real case-manager API over HTTP: intake, decision, sessions, discharge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx

from referral_service.domain.referral import Identifier, referral_key
from tests.conftest import HAPI_SOURCE_ID
from tests.referrals import referral_bundle

ADA = "ada-testpatient-adult-inpatient"


class Api:
    """The case-manager API over HTTP, as a coordinator's tools use it."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.submitted: list[str] = []  # referral ids, so a test can end what it left running

    async def submit(self, discharged_on: date | None = None) -> str:
        """Ada's referral (fresh identifiers) through ``POST /fhir``, leaving hospital on ``discharged_on``
        (default: the fixture's own date)."""
        bundle = referral_bundle(ADA, discharged_on=discharged_on)
        [request] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
        response = await self.http.post("/fhir", json=bundle, headers={"Content-Type": "application/fhir+json"})
        assert response.status_code == 201, response.text
        placer = request["identifier"][0]
        key = referral_key(HAPI_SOURCE_ID, Identifier(system=placer["system"], value=placer["value"]))
        self.submitted.append(key)
        return key

    async def accept(self, key: str, track: str) -> None:
        response = await self.http.post(
            f"/api/referrals/{key}/decision", json={"decision": "accept", "track_id": track}
        )
        assert response.status_code == 200, response.text

    async def attend(self, key: str, day: date, *, session_id: str) -> None:
        session = {"session_id": session_id, "date": day.isoformat(), "kind": "group", "minutes": 180, "attended": True}
        response = await self.http.post(f"/api/referrals/{key}/sessions", json={"session": session})
        assert response.status_code == 200, response.text

    async def discharge(self, key: str, reason: str, day: date) -> None:
        body = {"discharge": {"reason": reason, "date": day.isoformat()}}
        response = await self.http.post(f"/api/referrals/{key}/discharge", json=body)
        assert response.status_code == 200, response.text

    async def snapshot_until(
        self, key: str, until: Callable[[dict[str, Any]], bool], what: str, patience_s: float = 60.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + patience_s
        while True:
            response = await self.http.get(f"/api/referrals/{key}")
            if response.status_code == 200 and until(state := response.json()):
                return state
            assert time.monotonic() < deadline, f"{key}: {what} not reached in {patience_s:.0f}s"
            await asyncio.sleep(0.3)
