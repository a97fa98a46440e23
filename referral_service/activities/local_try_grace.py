"""A local try of an EHR write gets the worker's shutdown grace, then hands the write back to the workflow.

A worker shutting down cancels its activities once their grace is over, but not its local activities: the
workflow task running one stays open, so the worker would outlive its grace period (the process is then ended
with the task unfinished). This interceptor gives a local try of the named activities the same grace after
shutdown begins, then fails it as retryable, so the workflow schedules the durable activity (another worker
runs it) and the task completes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

SHUT_DOWN = "WorkerShutDown"  # the ApplicationError type of a local try ended by its worker's shutdown


class LocalTryGrace(Interceptor):
    def __init__(self, activities: Collection[str], grace: timedelta) -> None:
        self._activities = frozenset(activities)
        self._grace = grace

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next, self._activities, self._grace)


class _Inbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, activities: frozenset[str], grace: timedelta) -> None:
        super().__init__(next)
        self._activities = activities
        self._grace = grace

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        if not (info.is_local and info.activity_type in self._activities):
            return await self.next.execute_activity(input)
        work = asyncio.ensure_future(self.next.execute_activity(input))
        shutdown = asyncio.ensure_future(activity.wait_for_worker_shutdown())
        try:
            await asyncio.wait((work, shutdown), return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                await asyncio.wait_for(asyncio.shield(work), self._grace.total_seconds())
        except TimeoutError:
            raise ApplicationError("the worker shut down during a local try", type=SHUT_DOWN) from None
        finally:
            shutdown.cancel()
            work.cancel()  # a no-op once done; else (grace over, or this try timed out) the write must stop too
        return work.result()
