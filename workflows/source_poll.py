"""``SourcePollWorkflow``: one poll of one referring EHR, run by a Temporal Schedule (``poll-<source>``).

Each run searches from where the previous run got to (its completion result, which the Schedule hands to
the next run), starts a ``ReferralWorkflow`` for each new referral (workflow id = referral key, so a
referral already started by push, subscription or an earlier poll is left alone) and signals cancellation
for referrals the referrer revoked.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from referral_service.activities.intake_poll import FindReferralsInput, FoundReferrals, IntakePollActivities
    from referral_service.domain.program import Program
    from referral_service.domain.referral import Referral
    from workflows import search_attributes
    from workflows.referral import ReferralWorkflow
    from workflows.referral_types import CancelInput, StartReferralInput
    from workflows.referral_writes import EHR_RETRY


class PollInput(BaseModel):
    source_id: str
    program: Program
    task_queue: str


class PollResult(BaseModel):
    until: datetime | None = None
    started: int = 0
    revoked: int = 0


@workflow.defn
class SourcePollWorkflow:
    @workflow.run
    async def run(self, poll: PollInput) -> PollResult:
        previous = workflow.get_last_completion_result(type_hint=PollResult)
        since = previous.until if previous else None
        found: FoundReferrals = await workflow.execute_activity_method(
            IntakePollActivities.find_changed_referrals,
            FindReferralsInput(source_id=poll.source_id, since=since),
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=EHR_RETRY,
        )
        started = found.started
        # Runs recorded before intake moved into the activity carry referrals to start and cancel here.
        for referral in found.new:
            started += await self._start(referral.key, referral.referral, referral.patient_match, poll)
        for key in found.revoked:
            # Not started here, or already ended: nothing is left to cancel.
            with contextlib.suppress(ApplicationError):
                await workflow.get_external_workflow_handle(key).signal(
                    ReferralWorkflow.cancel, CancelInput(reason="revoked by referrer (seen by poll)")
                )
        revoked = found.cancelled + len(found.revoked)
        return PollResult(until=found.until or since, started=started, revoked=revoked)

    async def _start(self, key: str, referral: Referral, patient_match: list[str], poll: PollInput) -> int:
        start = StartReferralInput(
            key=key, referral=referral, program=poll.program, received_at=workflow.now().astimezone(UTC)
        )
        try:
            await workflow.start_child_workflow(
                ReferralWorkflow.run,
                start,
                id=key,
                task_queue=poll.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                search_attributes=search_attributes.at_start(referral.source_id, patient_match),
            )
        except WorkflowAlreadyStartedError:
            return 0
        return 1
