"""The intake's duplicate-patient check runs beside a referral's start and signals what it finds; the coordinator
sees each finding once on the timeline, however the signal and the first workflow task meet. A quick intake (or a
busy worker) lands the signal in the referral's first workflow task, with its start. Real Temporal dev server and
HAPI; the history replays."""

from __future__ import annotations

import uuid
from pathlib import Path

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from referral_service.worker import create_worker, replay_histories
from tests.conftest import HAPI_SOURCE_ID, TEST_KEY_RING
from tests.polling import eventually
from tests.workflows.stories import end_leftovers, start_referral, wait_for_phase
from workflows.referral import ReferralWorkflow
from workflows.referral_types import ReferralState

FLAGGED = "hapi-test.SR-OTHER-OPEN.0123456789"


async def _flags_once(handle: WorkflowHandle[ReferralWorkflow, ReferralState], tmp_path: Path) -> None:
    async def flagged_in_screening() -> ReferralState | None:
        state = await handle.query(ReferralWorkflow.snapshot)
        return state if state.possible_duplicates and state.phase == Phase.SCREENING else None

    state: ReferralState = await eventually(flagged_in_screening, "the finding on a referral in screening")
    assert state.possible_duplicates == [FLAGGED]
    flagged = [entry for entry in state.timeline if entry.event == "possible duplicate patient"]
    assert [entry.detail for entry in flagged] == [FLAGGED]
    recorded = tmp_path / "duplicates.json"
    recorded.write_text((await handle.fetch_history()).to_json())
    [replayed] = await replay_histories([recorded], TEST_KEY_RING)
    assert replayed.failure is None


async def test_a_finding_signalled_before_the_first_workflow_task_is_noted_once(
    tmp_path: Path, temporal_env: WorkflowEnvironment, hapi_client: FhirClient, program: Program
) -> None:
    queue = f"duplicates-{uuid.uuid4().hex[:8]}"
    # No worker yet: the start and the signal wait for the same, first, workflow task.
    handle = await start_referral(temporal_env, hapi_client, program, queue)
    await handle.signal(ReferralWorkflow.flag_possible_duplicates, [FLAGGED])
    async with create_worker(temporal_env.client, queue, {HAPI_SOURCE_ID: hapi_client}):
        await _flags_once(handle, tmp_path)
        await end_leftovers(queue)


async def test_a_finding_signalled_after_the_first_workflow_task_is_noted_once(
    tmp_path: Path, temporal_env: WorkflowEnvironment, hapi_client: FhirClient, program: Program
) -> None:
    queue = f"duplicates-{uuid.uuid4().hex[:8]}"
    async with create_worker(temporal_env.client, queue, {HAPI_SOURCE_ID: hapi_client}):
        handle = await start_referral(temporal_env, hapi_client, program, queue)
        await wait_for_phase(handle, Phase.SCREENING)
        await handle.signal(ReferralWorkflow.flag_possible_duplicates, [FLAGGED])
        await _flags_once(handle, tmp_path)
        await end_leftovers(queue)
