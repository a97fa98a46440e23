"""Building blocks for referral stories on the time-skipping server: start one, drive it, read HAPI back."""

from __future__ import annotations

import asyncio
import os
from datetime import date, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import TypedSearchAttributes
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from fhir_mappings.referral_in import referral_from_fhir
from referral_service.domain.attendance import SessionRecord
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import Program, SessionKind
from referral_service.domain.referral import referral_key
from referral_service.ehr.client import FhirClient
from referral_service.replay.clock import skip_time, terminate_when_idle
from tests.conftest import HAPI_SOURCE_ID
from tests.program_day import noon_of, program_today
from tests.referrals import ADA_DISCHARGED, FIXTURES, referral_bundle
from workflows.referral import ReferralWorkflow
from workflows.referral_types import RecordSessionInput, ReferralState, StartReferralInput

ReferralHandle = WorkflowHandle[ReferralWorkflow, ReferralState]
# Referrals started per task queue, so a failed test's leftovers can be terminated: on the time-skipping
# server one waiting on a vanished worker would hold the clock still for every later test.
STARTED: dict[str, list[ReferralHandle]] = {}


async def start_referral(
    env: WorkflowEnvironment,
    hapi: FhirClient,
    program: Program,
    queue: str,
    *,
    discharged_on: date | None = None,
    received_ago: timedelta = timedelta(0),
    source_id: str = HAPI_SOURCE_ID,
    client: Client | None = None,
    search_attributes: TypedSearchAttributes | None = None,
) -> ReferralHandle:
    """Seed the EHR with Ada's referral Bundle and start its workflow, as the intake API does (``received_ago``
    back-dates its arrival, so its response deadline may have passed already; ``client``: one other than the
    environment's, e.g. encrypting under another key ring; ``search_attributes``: those the intake starts it with)."""
    bundle = referral_bundle("ada-testpatient-adult-inpatient", discharged_on=discharged_on)
    await hapi.transaction(bundle)
    referral = referral_from_fhir(bundle, source_id=source_id, program_org=program.organization)
    key = referral_key(referral.source_id, referral.placer_identifier)
    # The test server's clock runs ahead of the wall clock once an earlier test has skipped time.
    received_at = await env.get_current_time() - received_ago
    start = StartReferralInput(key=key, referral=referral, program=program, received_at=received_at)
    handle = await (client or env.client).start_workflow(
        ReferralWorkflow.run, start, id=key, task_queue=queue, search_attributes=search_attributes
    )
    STARTED.setdefault(queue, []).append(handle)
    return handle


async def end_leftovers(queue: str) -> None:
    """Terminate what a test on ``queue`` left running (nothing, when it passed)."""
    for handle in STARTED.pop(queue, []):
        await terminate_when_idle(handle, "test ended")


async def written(hapi: FhirClient, resource_type: str, key: str) -> list[dict[str, Any]]:
    """What the service wrote to the EHR under one business identifier."""
    return await hapi.search(resource_type, {"identifier": f"{RESOURCE_KEY_SYSTEM}|{key}"})


def session(n: int, *, attended: bool = True, after: date = ADA_DISCHARGED) -> RecordSessionInput:
    """Group session number ``n``, ``n`` days after ``after`` (the hospital discharge by default)."""
    return RecordSessionInput(
        session=SessionRecord(
            session_id=f"s{n}",
            date=after + timedelta(days=n),
            kind=SessionKind.GROUP,
            minutes=180,
            attended=attended,
        )
    )


async def server_today(env: WorkflowEnvironment, program: Program) -> date:
    """The program's day by the test server's clock."""
    return program_today(await env.get_current_time(), program)


async def reach_day(env: WorkflowEnvironment, program: Program, day: date) -> None:
    """Move the test server's clock to ``day`` (midday in the program's zone) unless it is there already: a
    session or a discharge is recorded on its day or later, never ahead of it."""
    target = noon_of(day, program)
    now = await env.get_current_time()
    if program_today(now, program) < day:
        await skip_time(env.client, target - now)


async def referral_phase(client: Client, key: str) -> Phase | None:
    """The referral's phase from its snapshot; None while it does not exist (or no worker answers)."""
    try:
        return (await client.get_workflow_handle_for(ReferralWorkflow.run, key).query(ReferralWorkflow.snapshot)).phase
    except RPCError:
        return None


async def in_phase(client: Client, key: str, phase: Phase) -> bool:
    return await referral_phase(client, key) == phase


async def wait_for_phase(handle: ReferralHandle, phase: Phase) -> ReferralState:
    state = await handle.query(ReferralWorkflow.snapshot)
    for _ in range(300):
        if state.phase == phase:
            return state
        await asyncio.sleep(0.1)
        state = await handle.query(ReferralWorkflow.snapshot)
    raise AssertionError(f"never reached {phase}; last phase {state.phase}")


HISTORIES = FIXTURES.parent / "histories"


async def keep_history(handle: ReferralHandle, story: str) -> None:
    """With ``RECORD_HISTORIES=1``, save this run's history as the replay fixture for ``story``."""
    if os.environ.get("RECORD_HISTORIES") == "1":
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / f"{story}.json").write_text((await handle.fetch_history()).to_json())
