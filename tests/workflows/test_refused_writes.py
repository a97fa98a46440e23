"""Which EHR refusals are for good, on the time-skipping server with a real worker and our HAPI test server's
refusal switch: a 409 is a lost race until it lasts (refused at the fifth attempt, the note written instead of a
refused plan), and a 403 from a source the service authenticates to is waited out, never recorded as refused."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio.client import WorkflowUpdateStage

from referral_service.activities.writeback import CONFLICT_ATTEMPTS
from referral_service.config.sources import SourceSettings
from referral_service.domain.lifecycle import Phase
from referral_service.ehr.client import FhirClient
from referral_service.replay.clock import skip_time
from referral_service.worker import create_worker
from tests.conftest import HAPI_SOURCE_ID
from tests.hapi_refusals import refusing
from tests.smart_token_server import TokenServer, serving, smart_auth
from tests.workflows.stories import end_leftovers, keep_history, start_referral, wait_for_phase, written
from workflows.referral import ReferralWorkflow
from workflows.referral_types import CancelInput, ScreeningDecisionInput

ACCEPT_ADULT = ScreeningDecisionInput(decision="accept", track_id="adult-mh")


async def test_a_lasting_conflict_is_refused_at_the_fifth_attempt_and_the_plan_becomes_a_note(
    time_skipping_env, hapi_client, hapi_base_url, program, task_queue
):
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue)
    await wait_for_phase(handle, Phase.SCREENING)
    async with refusing(hapi_base_url, {"CareTeam": 409, "CarePlan": 412}):
        deciding = await handle.start_update(
            ReferralWorkflow.decide, ACCEPT_ADULT, wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        await skip_time(time_skipping_env.client, timedelta(minutes=2))  # the retries' backoff: 2 + 4 + 8 + 16 s
        await deciding.result()
    accepted = await handle.query(ReferralWorkflow.snapshot)

    assert accepted.phase == Phase.INTAKE_SCHEDULED  # care went on
    team, plan = accepted.refused[f"{handle.id}/careteam"], accepted.refused[f"{handle.id}/careplan"]
    assert (team.resource_type, team.status, team.codes, team.attempts) == ("CareTeam", 409, ["conflict"], 5)
    assert CONFLICT_ATTEMPTS == 5
    assert (plan.resource_type, plan.status, plan.attempts) == ("CarePlan", 412, CONFLICT_ATTEMPTS)
    assert plan.fallback is not None
    assert accepted.writes[f"{handle.id}/careplan"] == plan.fallback  # the Task lists the note meanwhile
    [note] = await written(hapi_client, "DocumentReference", f"{handle.id}/careplan")
    assert note["id"] == plan.fallback.id
    [task] = await written(hapi_client, "Task", f"{handle.id}/task")
    assert {"reference": f"DocumentReference/{note['id']}"} in [o["valueReference"] for o in task["output"]]

    retried = await handle.execute_update(ReferralWorkflow.retry_writes)
    assert [w.resource_type for w in retried.succeeded] == ["CareTeam", "CarePlan"]
    assert retried.still_refused == []
    [careplan] = await written(hapi_client, "CarePlan", f"{handle.id}/careplan")
    [careteam] = await written(hapi_client, "CareTeam", f"{handle.id}/careteam")
    assert careplan["careTeam"] == [{"reference": f"CareTeam/{careteam['id']}"}]
    [task] = await written(hapi_client, "Task", f"{handle.id}/task")  # rewritten to list the plan now
    assert {"reference": f"CarePlan/{careplan['id']}"} in [o["valueReference"] for o in task["output"]]
    await handle.signal(ReferralWorkflow.cancel, CancelInput())
    await handle.result()
    await keep_history(handle, "refused-writes-retried")


async def test_a_403_from_a_source_we_authenticate_to_is_retried_until_it_is_fixed(
    time_skipping_env, hapi_client, hapi_base_url, program, tmp_path
):
    """Credentials can be fixed: the receipt Task waits, retried, and is written once the EHR takes them."""
    queue = f"referrals-{uuid.uuid4().hex[:8]}"
    with serving(TokenServer()) as token_server:
        source = SourceSettings.model_validate(
            {
                "id": HAPI_SOURCE_ID,
                "base_url": hapi_base_url,
                "auth": smart_auth(tmp_path, token_url=token_server.token_url),
            }
        )
        authenticated = FhirClient(source.connection(timeout_seconds=30))
        async with create_worker(time_skipping_env.client, queue, {HAPI_SOURCE_ID: authenticated}):
            try:
                async with refusing(hapi_base_url, {"Task": 403}):
                    handle = await start_referral(time_skipping_env, hapi_client, program, queue)
                    await asyncio.sleep(3)  # several attempts meanwhile
                    waiting = await handle.query(ReferralWorkflow.snapshot)
                    assert (waiting.phase, waiting.refused) == (Phase.RECEIVED, {})
                    assert await written(hapi_client, "Task", f"{handle.id}/task") == []
                screening = await wait_for_phase(handle, Phase.SCREENING)
                assert screening.refused == {}
                [task] = await written(hapi_client, "Task", f"{handle.id}/task")
                assert task["status"] == "received"
                assert token_server.accepted, "the writes went with a token"
                await handle.signal(ReferralWorkflow.cancel, CancelInput())
                await handle.result()
            finally:
                await end_leftovers(queue)
        await authenticated.aclose()
