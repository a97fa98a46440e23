"""Consecutive no-shows put a referral at risk and ask the referring EHR for outreach: one Task per streak.

Time-skipping Temporal server, real worker, real HAPI read back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fhir_mappings.codes import OUTREACH, PROGRAM_TASK_SYSTEM, RESOURCE_KEY_SYSTEM
from referral_service.ehr.client import FhirClient
from tests.referrals import updated
from tests.workflows.stories import keep_history, reach_day, server_today, session, start_referral
from workflows.referral import ReferralWorkflow
from workflows.referral_types import CancelInput, ScreeningDecisionInput


async def _outreach_tasks(hapi: FhirClient, key: str) -> list[dict[str, Any]]:
    """Every outreach Task the service wrote for this referral (any streak)."""
    tasks = await hapi.search("Task", {"code": f"{PROGRAM_TASK_SYSTEM}|{OUTREACH[0]}", "_count": "200"})
    mine = [t for t in tasks if t["identifier"][0]["value"].startswith(f"{key}/outreach/")]
    return sorted(mine, key=lambda t: str(t["identifier"][0]["value"]))


async def test_two_no_shows_request_outreach_once_per_streak(time_skipping_env, hapi_client, program, task_queue):
    today = await server_today(time_skipping_env, program)
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue, discharged_on=today)
    await handle.execute_update(ReferralWorkflow.decide, ScreeningDecisionInput(decision="accept", track_id="adult-mh"))

    async def record(n: int, attended: bool) -> Any:
        await reach_day(time_skipping_env, program, today + timedelta(days=n))  # entered on the day, or later
        return await updated(handle, ReferralWorkflow.record_session, session(n, attended=attended, after=today))

    await record(1, True)
    assert not (await record(2, False)).at_risk
    assert await _outreach_tasks(hapi_client, handle.id) == []
    at_risk = await record(3, False)
    assert at_risk.at_risk
    [task] = await _outreach_tasks(hapi_client, handle.id)
    assert (task["status"], task["intent"]) == ("requested", "order")
    assert task["identifier"][0] == {"system": RESOURCE_KEY_SYSTEM, "value": f"{handle.id}/outreach/s2"}
    assert task["description"] == "2 consecutive IOP sessions missed: contact the patient"
    assert task["focus"]["type"] == "ServiceRequest"
    assert task["for"]["type"] == "Patient"
    assert at_risk.writes[f"{handle.id}/outreach/s2"].id == task["id"]

    await record(4, False)  # the same streak goes on
    await record(3, False)  # a repeated request
    assert [t["meta"]["versionId"] for t in await _outreach_tasks(hapi_client, handle.id)] == ["1"]

    assert not (await record(5, True)).at_risk
    await record(6, False)
    assert (await record(7, False)).at_risk  # a new streak, a new request
    tasks = await _outreach_tasks(hapi_client, handle.id)
    assert [t["identifier"][0]["value"] for t in tasks] == [f"{handle.id}/outreach/s2", f"{handle.id}/outreach/s6"]
    state = await handle.query(ReferralWorkflow.snapshot)
    assert [e.event for e in state.timeline].count("outreach requested") == 2

    await handle.signal(ReferralWorkflow.cancel, CancelInput())
    await handle.result()
    await keep_history(handle, "no-shows-outreach")
