"""An EHR that takes no CarePlan writes (as Epic and Oracle Health): the plans arrive as DocumentReference
notes, everything else as usual. Time-skipping Temporal, a real worker, the real HAPI server read back."""

from __future__ import annotations

import base64
import uuid

from fhir_mappings.capability import updatable_types
from referral_service.domain.discharge import Discharge, DischargeReason
from referral_service.domain.lifecycle import Phase
from referral_service.ehr.client import FhirClient
from referral_service.ehr.source import SourceConfig
from referral_service.worker import create_worker
from tests.conftest import HAPI_SOURCE_ID
from tests.workflows.stories import end_leftovers, server_today, session, start_referral, wait_for_phase, written
from workflows.referral import ReferralWorkflow
from workflows.referral_types import DischargeInput, FollowUpInput, ScreeningDecisionInput


async def test_hapi_says_it_takes_care_plans_and_encounters(hapi_client):
    """Without an override the HAPI test server's own CapabilityStatement decides: it accepts both."""
    assert {"CarePlan", "Encounter", "Task", "CareTeam", "Observation"} <= updatable_types(
        await hapi_client.capabilities()
    )


async def test_no_careplan_writes_means_plan_notes_instead(time_skipping_env, hapi_client, hapi_base_url, program):
    queue = f"referrals-{uuid.uuid4().hex[:8]}"
    no_plans = FhirClient(SourceConfig(id=HAPI_SOURCE_ID, base_url=hapi_base_url, writable={"CarePlan": False}))
    async with create_worker(time_skipping_env.client, queue, {HAPI_SOURCE_ID: no_plans}):
        try:
            handle = await start_referral(time_skipping_env, hapi_client, program, queue)
            await handle.execute_update(
                ReferralWorkflow.decide, ScreeningDecisionInput(decision="accept", track_id="adult-mh")
            )
            await handle.execute_update(ReferralWorkflow.record_session, session(1))
            today = await server_today(time_skipping_env, program)
            done = Discharge(reason=DischargeReason.COMPLETED, date=today)
            await handle.execute_update(ReferralWorkflow.discharge, DischargeInput(discharge=done))
            await wait_for_phase(handle, Phase.AFTERCARE)
            for day in (7, 30):  # both aftercare follow-ups reached: the referral closes
                await handle.execute_update(ReferralWorkflow.record_follow_up, FollowUpInput(day=day, reached=True))
            final = await handle.result()
        finally:
            await end_leftovers(queue)
    await no_plans.aclose()
    key = handle.id
    assert final.phase == Phase.CLOSED

    for part, title in (("careplan", "IOP treatment plan: Adult"), ("aftercare-plan", "IOP aftercare plan")):
        assert await written(hapi_client, "CarePlan", f"{key}/{part}") == []
        [note] = await written(hapi_client, "DocumentReference", f"{key}/{part}")
        assert note["status"] == "current"
        assert note["type"]["coding"][0]["code"] == "18776-5"
        assert note["context"]["related"][0]["type"] == "ServiceRequest"
        text = base64.b64decode(note["content"][0]["attachment"]["data"]).decode()
        assert text.startswith(title)
        assert "(completed)" in text.splitlines()[0]  # the note follows the plan to its end
        assert (final.writes[f"{key}/{part}"].resource_type, final.writes[f"{key}/{part}"].id) == (
            "DocumentReference",
            note["id"],
        )

    [team] = await written(hapi_client, "CareTeam", f"{key}/careteam")
    assert team["status"] == "inactive"
    [encounter] = await written(hapi_client, "Encounter", f"{key}/encounter/s1")
    assert encounter["status"] == "finished"
    [task] = await written(hapi_client, "Task", f"{key}/task")
    assert task["status"] == "completed"
    outputs = {output["valueReference"]["reference"] for output in task["output"]}
    plan_note = final.writes[f"{key}/careplan"]
    assert outputs == {f"DocumentReference/{plan_note.id}", f"Encounter/{encounter['id']}"}
