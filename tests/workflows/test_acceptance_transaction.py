"""The acceptance's CareTeam, CarePlan and Task: one transaction to an EHR that takes them (HAPI offers
``transaction``), each write alone to one that does not (the source's ``transactions = false``), and the same
resources in the EHR either way: the plan names the team, the Task lists the plan, each written once. Real
Temporal dev server, real worker, real HAPI with validation on."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from referral_service.config.sources import SourceSettings
from referral_service.domain.lifecycle import Phase
from referral_service.ehr.client import FhirClient, FhirExchange
from referral_service.worker import create_worker
from tests.conftest import HAPI_SOURCE_ID
from tests.workflows.stories import end_leftovers, start_referral, wait_for_phase, written
from workflows.referral import ReferralWorkflow
from workflows.referral_types import ScreeningDecisionInput

ACCEPT = ScreeningDecisionInput(decision="accept", track_id="adult-mh")


@pytest.mark.parametrize("transactions", [None, False], ids=["as-the-ehr-offers", "each-write-alone"])
async def test_the_acceptance_reaches_the_ehr_whole_by_either_path(
    temporal_env, hapi_client, hapi_base_url, program, transactions
):
    seen: list[FhirExchange] = []
    source = SourceSettings(id=HAPI_SOURCE_ID, base_url=hapi_base_url, transactions=transactions)
    queue = f"referrals-{uuid.uuid4().hex[:8]}"
    async with (
        FhirClient(source.connection(), observer=seen.append) as ehr,
        create_worker(temporal_env.client, queue, {HAPI_SOURCE_ID: ehr}),
    ):
        try:
            handle = await start_referral(temporal_env, hapi_client, program, queue)
            await wait_for_phase(handle, Phase.SCREENING)
            before = len(seen)
            await handle.execute_update(ReferralWorkflow.decide, ACCEPT)
            acceptance = [e for e in seen[before:] if e.method in ("PUT", "POST")]
            state = await handle.query(ReferralWorkflow.snapshot)
        finally:
            await end_leftovers(queue)

    if transactions is None:
        [transaction] = acceptance  # one request, no write alone
        assert transaction.method == "POST"
        assert [entry[1].split("/")[0] for entry in transaction.entries if entry[1]] == ["CareTeam", "CarePlan", "Task"]
    else:
        assert [(e.method, e.url.split("?")[0]) for e in acceptance] == [
            ("PUT", "CareTeam"),
            ("PUT", "CarePlan"),
            ("PUT", "Task"),
        ]
    [team] = await written(hapi_client, "CareTeam", f"{handle.id}/careteam")
    [plan] = await written(hapi_client, "CarePlan", f"{handle.id}/careplan")
    [task] = await written(hapi_client, "Task", f"{handle.id}/task")
    assert plan["careTeam"] == [{"reference": f"CareTeam/{team['id']}"}]
    assert {"reference": f"CarePlan/{plan['id']}"} in [o["valueReference"] for o in task["output"]]
    assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == ("accepted", "event-scheduled")
    recorded: dict[str, Any] = {key: (w.resource_type, w.id) for key, w in state.writes.items()}
    assert recorded[f"{handle.id}/careplan"] == ("CarePlan", plan["id"])
    assert recorded[f"{handle.id}/careteam"] == ("CareTeam", team["id"])
