"""Starting a referral's workflow, once: its id is the referral key, so the same referral from any route
finds the one already started. Never waits for a worker, so the sender is answered while workers are down."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowQueryFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from referral_service.domain.lifecycle import Phase
from referral_service.domain.patient_match import match_keys
from referral_service.domain.program import Program
from referral_service.domain.referral import Referral, referral_key
from referral_service.logging import get_logger
from workflows import search_attributes
from workflows.referral import ReferralWorkflow
from workflows.referral_types import CancelInput, ReferralState, StartReferralInput

_QUERY_TIMEOUT = timedelta(seconds=5)
_MAX_DUPLICATES = 20  # enough for the coordinator to see there is a problem
log = get_logger()


@dataclass(frozen=True)
class Started:
    """A referral's workflow as the intake left it: new, or the one a previous submission started (with its
    state when a worker answered for it in time, else its phase from visibility)."""

    key: str
    created: bool
    phase: Phase
    received_at: datetime
    changed_at: datetime
    closed: bool = False
    state: ReferralState | None = None


@dataclass(frozen=True)
class ReferralStarts:
    """Starts and cancels referral workflows on one Temporal namespace and task queue."""

    temporal: Client
    task_queue: str
    program: Program
    patient_match_secret: bytes

    async def start(self, referral: Referral, received_at: datetime) -> Started:
        key = referral_key(referral.source_id, referral.placer_identifier)
        patient_keys = match_keys(referral.patient, self.patient_match_secret)
        start = StartReferralInput(key=key, referral=referral, program=self.program, received_at=received_at)
        # The duplicate-patient check runs beside the start, not before it (P1 in bench/RESULTS.md): what it
        # finds is signalled to the new referral.
        async with asyncio.TaskGroup() as both:
            duplicates = both.create_task(self._open_referrals_matching(patient_keys, key))
            created = both.create_task(self._started(start, patient_keys))
        handle = created.result()
        if handle is None:
            return await self._existing(key)
        if found := duplicates.result():
            try:
                await handle.signal(ReferralWorkflow.flag_possible_duplicates, found)
            except RPCError as error:
                log.warning("possible duplicates not flagged", referral_key=key, status=error.status.name)
        state = ReferralState(key=key, referral=referral, program=self.program, received_at=received_at)
        return Started(key, True, Phase.RECEIVED, received_at, received_at, state=state)

    async def _started(
        self, start: StartReferralInput, patient_keys: list[str]
    ) -> WorkflowHandle[ReferralWorkflow, ReferralState] | None:
        """The new referral's workflow; None when one with its key was already started."""
        try:
            return await self.temporal.start_workflow(
                ReferralWorkflow.run,
                start,
                id=start.key,
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=search_attributes.at_start(start.referral.source_id, patient_keys),
            )
        except WorkflowAlreadyStartedError:
            return None

    async def cancel(self, key: str, reason: str) -> bool:
        """Signal cancellation; False when there is no running referral to cancel (never taken in, ended)."""
        handle = self.temporal.get_workflow_handle_for(ReferralWorkflow.run, key)
        try:
            await handle.signal(ReferralWorkflow.cancel, CancelInput(reason=reason))
        except RPCError:
            return False
        return True

    async def _existing(self, key: str) -> Started:
        """The same referral again: how it stands (its state, or its phase alone when no worker answers)."""
        handle = self.temporal.get_workflow_handle_for(ReferralWorkflow.run, key)
        description = await handle.describe()
        phase = Phase(description.typed_search_attributes.get(search_attributes.PHASE) or Phase.RECEIVED)
        received = description.start_time
        closed = description.status != WorkflowExecutionStatus.RUNNING
        state = await _state_of(handle, description.status)
        return Started(key, False, phase, received, description.close_time or received, closed, state)

    async def _open_referrals_matching(self, patient_keys: list[str], key: str) -> list[str]:
        """Ids of running referrals whose patient shares a match key: flagged for the coordinator, never merged.

        Visibility is eventually consistent, so a referral started a moment ago may not be found yet. A server
        that cannot answer (down, or without visibility like the time-skipping test server) skips the check
        rather than refusing the referral; the warning names the status only, never the query or the patient.
        """
        if not patient_keys:
            return []
        keys = ", ".join(f"'{k}'" for k in patient_keys)  # hex digests and a sanitised id: nothing to escape
        query = (
            f"WorkflowType = 'ReferralWorkflow' AND ExecutionStatus = 'Running'"
            f" AND {search_attributes.PATIENT_MATCH.name} IN ({keys}) AND WorkflowId != '{key}'"
        )
        found = self.temporal.list_workflows(query, limit=_MAX_DUPLICATES, rpc_timeout=_QUERY_TIMEOUT)
        try:
            return sorted({execution.id async for execution in found})
        except RPCError as error:
            log.warning("duplicate patient check skipped", referral_key=key, status=error.status.name)
            return []


async def _state_of(
    handle: WorkflowHandle[ReferralWorkflow, ReferralState], status: WorkflowExecutionStatus | None
) -> ReferralState | None:
    """The referral's state: a completed one's result (no worker needed), else the snapshot query; None when no
    worker answers in time."""
    try:
        if status == WorkflowExecutionStatus.COMPLETED:
            return await handle.result(rpc_timeout=_QUERY_TIMEOUT)
        return await handle.query(ReferralWorkflow.snapshot, rpc_timeout=_QUERY_TIMEOUT)
    except (RPCError, WorkflowQueryFailedError):
        return None
