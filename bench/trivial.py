"""The Temporal baseline for P2: a workflow that runs one activity that does nothing."""

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
        await workflow.execute_activity(nothing, start_to_close_timeout=timedelta(seconds=30))
