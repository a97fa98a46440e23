"""Skipping the time-skipping test server's clock, patiently, and ending workflows without stopping it.

``WorkflowEnvironment.sleep`` sends one RPC with the client's default deadline; the server answers only once
its virtual clock has reached the target, and the clock stands still while activities run. On a busy machine
the EHR writes that fall due on the way take longer than that deadline, and the sleep fails with "Timeout
expired" although nothing is wrong. ``skip_time`` sends the same request with a deadline sized for real EHR
writes.

A workflow terminated while its work is in flight (just started, its first write under way) leaves the server
holding its clock (measured: one extra unlock frees it), so every later skip on that server waits forever.
``terminate_when_idle`` lets in-flight work finish first.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError

SKIP_DEADLINE = timedelta(minutes=5)


async def skip_time(client: Client, duration: timedelta) -> None:
    """Move the test server's clock ``duration`` ahead; timers due on the way fire and their work completes."""
    request = SleepRequest()
    request.duration.FromTimedelta(duration)
    await client.test_service.unlock_time_skipping_with_sleep(request, timeout=SKIP_DEADLINE)


IDLE_PATIENCE_S = 60.0
_E = EventType
_ACTIVITY_CLOSED = {
    _E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    _E.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    _E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    _E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}
_WORKFLOW_TASK_OPEN = {_E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, _E.EVENT_TYPE_WORKFLOW_TASK_STARTED}


async def terminate_when_idle(handle: WorkflowHandle[Any, Any], reason: str) -> None:
    """Terminate a running workflow once nothing of it is in flight (see ``until_idle``); one that has ended
    or never existed is left alone."""
    try:
        if await until_idle(handle) is not None:
            await handle.terminate(reason)
    except RPCError:
        return  # it ended meanwhile, or was never started


async def until_idle(handle: WorkflowHandle[Any, Any], patience_s: float = IDLE_PATIENCE_S) -> bool | None:
    """Wait until the workflow's history shows no workflow task and no activity in flight: True then, False
    after ``patience_s`` (an activity waiting to be retried counts as in flight), None once it has closed.
    Read from the history: the test server's describe leaves pending work out."""
    deadline = time.monotonic() + patience_s
    while (in_flight := _in_flight(await handle.fetch_history())) is not None:
        if not in_flight:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return None


def _in_flight(history: WorkflowHistory) -> bool | None:
    """Whether work is in flight; None once the workflow has closed."""
    events = history.events
    if events and events[-1].event_type in _CLOSED:
        return None
    open_activities = set()
    for event in events:
        if event.event_type == _E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            open_activities.add(event.event_id)
        elif event.event_type in _ACTIVITY_CLOSED:
            open_activities.discard(getattr(event, _ACTIVITY_CLOSED[event.event_type]).scheduled_event_id)
    return bool(open_activities) or bool(events and events[-1].event_type in _WORKFLOW_TASK_OPEN)


_CLOSED = {
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}
