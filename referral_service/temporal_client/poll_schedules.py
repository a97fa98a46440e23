"""The polling Schedule of each referring EHR with ``poll`` on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from referral_service.config import Settings
from referral_service.domain.program import Program
from workflows.source_poll import PollInput, SourcePollWorkflow


def poll_schedule_id(source_id: str) -> str:
    return f"poll-{source_id}"


async def ensure_poll_schedules(client: Client, settings: Settings, program: Program) -> list[str]:
    """Create, or bring up to date, the polling Schedule of every source with ``poll`` on; their ids."""
    ids = []
    for source in settings.sources:
        if not source.poll:
            continue
        schedule_id = poll_schedule_id(source.id)
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                SourcePollWorkflow.run,
                PollInput(source_id=source.id, program=program, task_queue=settings.task_queue),
                id=schedule_id,
                task_queue=settings.task_queue,
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=source.poll_interval_seconds))]),
            # A poll still running when the next is due (a slow EHR) is not doubled up.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
        try:
            await client.create_schedule(schedule_id, schedule)
        except ScheduleAlreadyRunningError:
            await client.get_schedule_handle(schedule_id).update(_replacing_with(schedule))
        ids.append(schedule_id)
    return ids


def _replacing_with(schedule: Schedule) -> Callable[[ScheduleUpdateInput], ScheduleUpdate]:
    return lambda _: ScheduleUpdate(schedule=schedule)
