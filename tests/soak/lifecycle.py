"""What the crash soaks share: a referral's whole lifecycle driven by updates that survive dead workers and
restarting servers, and the tally at the end (every referral closed, each resource its workflow wrote in the EHR
exactly once, counted by business identifier; its read-model row the one the finished workflow gives)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from referral_service.domain.discharge import Discharge, DischargeReason
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from referral_service.store.referrals import ReferralRows
from tests.program_day import program_today
from tests.workflows.stories import session, written
from workflows.referral import ReferralWorkflow
from workflows.referral_types import DischargeInput, FollowUpInput, ScreeningDecisionInput, UpdateAnswer

SESSIONS = 3


async def update_once(client: Client, key: str, update: Any, arg: Any, update_id: str) -> UpdateAnswer:
    """An update that survives a dead worker or a restarting server: retried under the same update id, so
    Temporal applies it once however many times it is sent."""
    handle = client.get_workflow_handle_for(ReferralWorkflow.run, key)
    while True:
        try:
            result: UpdateAnswer = await handle.execute_update(
                update, arg, id=update_id, rpc_timeout=timedelta(seconds=15)
            )
            return result
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError):
            await asyncio.sleep(1)


async def phase_of(client: Client, key: str) -> Phase | None:
    with contextlib.suppress(RPCError):
        handle = client.get_workflow_handle_for(ReferralWorkflow.run, key)
        return (await handle.query(ReferralWorkflow.snapshot, rpc_timeout=timedelta(seconds=10))).phase
    return None


async def until_phase(client: Client, key: str, phase: Phase) -> None:
    while await phase_of(client, key) != phase:  # noqa: ASYNC110 - polling another process's state
        await asyncio.sleep(1)


async def lifecycle(client: Client, key: str, discharged_on: date, program: Program) -> None:
    """Accepted, ``SESSIONS`` sessions attended, discharged completed, both follow-ups reached: closed."""
    accept = ScreeningDecisionInput(decision="accept", track_id="adult-mh")
    await update_once(client, key, ReferralWorkflow.decide, accept, f"{key}/accept")
    for n in range(1, SESSIONS + 1):
        await update_once(client, key, ReferralWorkflow.record_session, session(n, after=discharged_on), f"{key}/s{n}")
    # The program's today: the last session's day (no session or discharge may be dated after it).
    done = DischargeInput(discharge=Discharge(reason=DischargeReason.COMPLETED, date=program_today(program=program)))
    await update_once(client, key, ReferralWorkflow.discharge, done, f"{key}/discharge")
    await until_phase(client, key, Phase.AFTERCARE)
    for day in (7, 30):
        reached = FollowUpInput(day=day, reached=True)
        await update_once(client, key, ReferralWorkflow.record_follow_up, reached, f"{key}/f{day}")
    await until_phase(client, key, Phase.CLOSED)


@dataclass
class Tally:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    stale_rows: list[str] = field(default_factory=list)
    resources: int = 0


async def tally(client: Client, hapi: FhirClient, keys: list[str], rows: ReferralRows) -> Tally:
    found = Tally()
    for key in keys:
        handle = client.get_workflow_handle_for(ReferralWorkflow.run, key)
        state = await handle.query(ReferralWorkflow.snapshot)
        # The read model converged despite the kills: the row the killed and restarted workers left is
        # the row the finished workflow gives (the version aside).
        stored, final = await rows.get(key), await handle.query(ReferralWorkflow.row)
        if stored is None or stored.row.model_copy(update={"version": final.version}) != final:
            found.stale_rows.append(key)
        if state.phase != Phase.CLOSED:
            found.lost.append(f"{key}: {state.phase}")
        encounters = [w for w in state.writes.values() if w.resource_type == "Encounter"]
        if len(encounters) != SESSIONS:
            found.lost.append(f"{key}: {len(encounters)} encounters")
        for write_key, write in state.writes.items():
            in_ehr = await written(hapi, write.resource_type, write_key)
            found.resources += len(in_ehr)
            if len(in_ehr) != 1:
                found.duplicated.append(f"{write.resource_type} {write_key}: {len(in_ehr)}")
    return found
