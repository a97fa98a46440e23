"""A referral upserts its search attributes only when they change, and what the intake started it with counts as
published: its first phase is not upserted again. Each upsert is a history event and a visibility write in the
workflow task that answers the case manager. Real Temporal dev server and HAPI; the history replays."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from referral_service.domain.discharge import DeclineReason
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from referral_service.worker import create_worker, replay_histories
from tests.conftest import HAPI_SOURCE_ID, TEST_KEY_RING
from tests.workflows.stories import start_referral
from workflows import search_attributes
from workflows.referral import ReferralWorkflow
from workflows.referral_types import ScreeningDecisionInput

PHASE = search_attributes.PHASE.name


def upserted_phases(history: WorkflowHistory) -> list[str]:
    """The phase each upsert of the history set, in order (search attributes are not encrypted: codes only)."""
    upserts = [
        event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    return [json.loads(fields[PHASE].data) for fields in upserts if PHASE in fields]


async def test_the_phase_a_referral_starts_with_is_not_upserted_again(
    tmp_path: Path, temporal_env: WorkflowEnvironment, hapi_client: FhirClient, program: Program
) -> None:
    queue = f"upserts-{uuid.uuid4().hex[:8]}"
    started_with = search_attributes.at_start(HAPI_SOURCE_ID, [])
    async with create_worker(temporal_env.client, queue, {HAPI_SOURCE_ID: hapi_client}):
        handle = await start_referral(temporal_env, hapi_client, program, queue, search_attributes=started_with)
        decline = ScreeningDecisionInput(decision="decline", decline_reason=DeclineReason.NO_CAPACITY)
        await handle.execute_update(ReferralWorkflow.decide, decline)
        final = await handle.result()
    history = await handle.fetch_history()

    phases = upserted_phases(history)
    assert Phase.RECEIVED not in phases
    assert phases[0] == Phase.SCREENING
    assert phases[-1] == final.phase  # every change after the start is still published
    described = await handle.describe()
    assert described.typed_search_attributes.get(search_attributes.PHASE) == final.phase

    recorded = tmp_path / "started-with-attributes.json"
    recorded.write_text(history.to_json())
    [replayed] = await replay_histories([recorded], TEST_KEY_RING)
    assert replayed.failure is None
