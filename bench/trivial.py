"""The Temporal baseline for P2: a workflow that runs one activity that does nothing, tried locally first as the
referral workflow tries each EHR write (a local activity)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def nothing() -> None:
    return None


@workflow.defn
class TrivialWorkflow:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_local_activity(nothing, start_to_close_timeout=timedelta(seconds=30))
