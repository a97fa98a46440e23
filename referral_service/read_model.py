"""Rebuilding the referral read model from Temporal: every referral workflow of the service's task queue that
the namespace still holds is asked for its row (the ``row`` query, the same projection its workflow writes)
and the row is written unless the table already has that version or a newer one.
Rows of referrals past the namespace's retention stay.

A closed referral's query makes a worker replay its history, so this is an operator's command (after a
restore, or for referrals begun before the read model existed), not a request path.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio.client import Client
from temporalio.service import RPCError

from referral_service.logging import get_logger
from referral_service.store.referrals import ReferralRows
from workflows.referral import ReferralWorkflow

log = get_logger()
CONCURRENCY = 8  # queries in flight: a worker replays each closed history once


@dataclass
class RebuildCounts:
    written: int = 0
    current: int = 0  # the table had this version already (kept current by the workflow)
    failed: int = 0  # no worker answered the query


async def rebuild_read_model(client: Client, rows: ReferralRows, task_queue: str) -> RebuildCounts:
    """Rows for the referrals on ``task_queue`` (another queue's referrals belong to another deployment, whose
    workers alone can answer their queries)."""
    counts = RebuildCounts()
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(workflow_id: str) -> None:
        async with limit:
            try:
                row = await client.get_workflow_handle_for(ReferralWorkflow.run, workflow_id).query(
                    ReferralWorkflow.row
                )
            except RPCError as error:
                log.warning("read model rebuild: no row", workflow_id=workflow_id, error_type=type(error).__name__)
                counts.failed += 1
                return
        if await rows.upsert(row):
            counts.written += 1
        else:
            counts.current += 1

    query = f"WorkflowType = 'ReferralWorkflow' AND TaskQueue = '{task_queue}'"
    ids = [wf.id async for wf in client.list_workflows(query)]
    await asyncio.gather(*(one(workflow_id) for workflow_id in dict.fromkeys(ids)))
    return counts
