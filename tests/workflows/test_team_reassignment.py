"""Reassigning the care team mid-program: one CareTeam in the EHR with the new member, a revised CarePlan, and
the previous assignment kept. Time-skipping Temporal server, real worker, real HAPI."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowUpdateFailedError

from referral_service.domain.discharge import Discharge, DischargeReason
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import StaffRole
from tests.referrals import updated
from tests.workflows.stories import keep_history, server_today, session, start_referral, written
from workflows.referral import ReferralWorkflow
from workflows.referral_types import CancelInput, DischargeInput, ReassignTeamInput, ScreeningDecisionInput

TO_CHEN = ReassignTeamInput(members={StaffRole.PRIMARY_THERAPIST: "lmft-chen"})


async def _refusal(handle, update: ReassignTeamInput) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(ReferralWorkflow.reassign_team, update)
    return str(refused.value.cause)


async def test_reassigning_the_primary_therapist_rewrites_the_care_team_and_revises_the_plan(
    time_skipping_env, hapi_client, program, task_queue
):
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue)
    assert "between acceptance and discharge, not in phase" in await _refusal(handle, TO_CHEN)  # no team yet
    accepted = await updated(
        handle, ReferralWorkflow.decide, ScreeningDecisionInput(decision="accept", track_id="adult-mh")
    )
    assert accepted.team is not None
    assert accepted.team.members[StaffRole.PRIMARY_THERAPIST].id == "lcsw-reyes"
    await handle.execute_update(ReferralWorkflow.record_session, session(1))
    [plan_before] = await written(hapi_client, "CarePlan", f"{handle.id}/careplan")

    state = await updated(handle, ReferralWorkflow.reassign_team, TO_CHEN)

    assert state.phase == Phase.IN_TREATMENT
    assert state.team is not None
    assert state.team.members[StaffRole.PRIMARY_THERAPIST].id == "lmft-chen"
    first, second = state.team_history
    assert first.members[StaffRole.PRIMARY_THERAPIST].id == "lcsw-reyes"
    assert first.assigned_at is not None
    assert second.assigned_at is not None
    assert second.assigned_at >= first.assigned_at
    assert state.timeline[-1].event == "care team reassigned"
    assert state.timeline[-1].detail == "primary_therapist: lcsw-reyes -> lmft-chen"
    [team] = await written(hapi_client, "CareTeam", f"{handle.id}/careteam")
    members = [p["member"]["display"] for p in team["participant"]]
    assert "David Chen, LMFT" in members
    assert "Marisol Reyes, LCSW" not in members
    assert team["status"] == "active"
    [plan] = await written(hapi_client, "CarePlan", f"{handle.id}/careplan")
    assert int(plan["meta"]["versionId"]) == int(plan_before["meta"]["versionId"]) + 1
    assert {"display": "David Chen, LMFT"} in plan["contributor"]
    assert plan["careTeam"] == [{"reference": f"CareTeam/{team['id']}"}]

    again = await updated(handle, ReferralWorkflow.reassign_team, TO_CHEN)  # a retried request
    assert len(again.team_history) == 2
    [same_plan] = await written(hapi_client, "CarePlan", f"{handle.id}/careplan")
    assert same_plan["meta"]["versionId"] == plan["meta"]["versionId"]

    assert await _refusal(handle, ReassignTeamInput(members={StaffRole.PEER_SPECIALIST: "peer-johnson"})) == (
        "track adult-mh has no peer_specialist on its teams"
    )
    assert await _refusal(handle, ReassignTeamInput(members={StaffRole.NURSE: "rn-nobody"})) == (
        "no staff member 'rn-nobody' on the program's roster"
    )
    overloaded = ReassignTeamInput(members={StaffRole.PRIMARY_THERAPIST: "lcsw-reyes"}, caseloads={"lcsw-reyes": 15})
    assert await _refusal(handle, overloaded) == "lcsw-reyes is at their caseload limit (15 of 15)"

    await handle.signal(ReferralWorkflow.cancel, CancelInput())
    final = await handle.result()
    await keep_history(handle, "team-reassigned")
    assert final.phase == Phase.CANCELLED
    [closed] = await written(hapi_client, "CareTeam", f"{handle.id}/careteam")
    assert closed["status"] == "inactive"


async def test_a_discharge_arriving_during_a_reassignment_still_closes_the_team(
    time_skipping_env, hapi_client, program, task_queue
):
    """Sent together: whichever lands first, the EHR ends with the team inactive and the plan completed (a
    reassignment's writes never reopen a closed team), or the reassignment is refused, naming the rule: while the
    team closes, or once the discharge has moved the referral on (its writes done in one workflow task)."""
    handle = await start_referral(time_skipping_env, hapi_client, program, task_queue)
    await handle.execute_update(ReferralWorkflow.decide, ScreeningDecisionInput(decision="accept", track_id="adult-mh"))
    await handle.execute_update(ReferralWorkflow.record_session, session(1))
    today = await server_today(time_skipping_env, program)
    discharge = DischargeInput(discharge=Discharge(reason=DischargeReason.COMPLETED, date=today))

    reassigned, _ = await asyncio.gather(
        handle.execute_update(ReferralWorkflow.reassign_team, TO_CHEN),
        handle.execute_update(ReferralWorkflow.discharge, discharge),
        return_exceptions=True,
    )

    if isinstance(reassigned, BaseException):
        assert isinstance(reassigned, WorkflowUpdateFailedError)
        refusal = str(reassigned.cause)
        assert "its care team is closing" in refusal or "between acceptance and discharge" in refusal, refusal
    [team] = await written(hapi_client, "CareTeam", f"{handle.id}/careteam")
    [plan] = await written(hapi_client, "CarePlan", f"{handle.id}/careplan")
    assert (team["status"], plan["status"]) == ("inactive", "completed")
    await handle.terminate("aftercare not under test")
