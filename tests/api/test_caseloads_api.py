"""Caseloads the service knows: acceptance assigns the least-loaded eligible staff by the open referrals the
read model counts, whatever the caller sends as ``caseloads``; the caseload page shows each member's load
against their limit (real API over HTTP, worker, Temporal dev server and HAPI FHIR)."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.ehr.client import FhirClient
from tests.api_driver import Api
from tests.api_server import running_api

pytestmark = [pytest.mark.timeout(300)]


async def _open_referrals(http: httpx.AsyncClient, staff_id: str, patience_s: float = 30.0) -> int:
    """The caseload page's count for ``staff_id``, once it is above zero (the read model follows the workflow)."""
    deadline = time.monotonic() + patience_s
    while True:
        page = await http.get("/caseload")
        assert page.status_code == 200, page.text
        found = re.search(rf'<tr data-staff="{staff_id}">.*?<td>.*?</td>\s*<td>(\d+)', page.text, re.S)
        assert found, f"no staff-load row for {staff_id}"
        if int(found[1]) > 0 or time.monotonic() > deadline:
            return int(found[1])
        await asyncio.sleep(0.2)


async def test_acceptance_assigns_the_least_loaded_staff_by_the_read_models_caseloads(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
):
    async with (
        running_api(temporal_env, hapi_base_url, hapi_client, queue_prefix="caseloads") as url,
        httpx.AsyncClient(base_url=url, timeout=120) as http,
    ):
        api = Api(http)
        first, second = await api.submit(), await api.submit()
        await api.accept(first, "adult-mh")
        one = await http.get(f"/api/referrals/{first}")
        team = {role: m["id"] for role, m in one.json()["team"]["members"].items()}
        # Nobody has a referral yet: the first by id of each role takes it.
        assert team["prescriber"] == "dr-okafor"
        assert team["primary_therapist"] == "lcsw-reyes"
        assert await _open_referrals(http, "dr-okafor") == 1
        assert await _open_referrals(http, "lcsw-reyes") == 1

        # A caller's caseloads are ignored: np-lindqvist "at the limit" here would otherwise lose the referral.
        accepted = await http.post(
            f"/api/referrals/{second}/decision",
            json={"decision": "accept", "track_id": "adult-mh", "caseloads": {"np-lindqvist": 40, "lmft-chen": 12}},
        )
        assert accepted.status_code == 200, accepted.text
        team = {role: m["id"] for role, m in accepted.json()["team"]["members"].items()}
        assert team["prescriber"] == "np-lindqvist"  # dr-okafor has one open referral, np-lindqvist none
        assert team["primary_therapist"] == "lmft-chen"
        assert team["case_manager"] == "cm-patel"  # the only one: two open referrals now
        assert await _open_referrals(http, "np-lindqvist") == 1
        page = (await http.get("/caseload")).text
        assert re.search(r'<tr data-staff="cm-patel">.*?<td>.*?</td>\s*<td>2</td>\s*<td>40</td>', page, re.S)
