"""Read a referral (the ``snapshot`` query), drive it (its updates) and cancel it (its signal): the one place
these calls and their failures are handled, for every surface."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from referral_service.referrals import workflow_handle
from referral_service.referrals.errors import (
    ClinicalDateRefused,
    Ended,
    NoSuchReferral,
    ReferralError,
    Refused,
    Unavailable,
    Unreadable,
)
from workflows.referral import ReferralWorkflow
from workflows.referral_base import CLINICAL_DATE_ERROR
from workflows.referral_types import CancelInput, ReferralState, RetryWritesResult, UpdateAnswer

# Snapshot queries in flight at once when a page or a measure needs many: each one is a worker task.
SNAPSHOT_CONCURRENCY = 16


async def snapshot(client: Client, key: str) -> ReferralState:
    """The referral as its workflow knows it; ``NoSuchReferral``, ``Unavailable`` or ``Unreadable``."""
    return await workflow_handle.snapshot(client, key)


async def snapshots(client: Client, keys: Iterable[str]) -> dict[str, ReferralState | None]:
    """Snapshots of many referrals (each key once), at most ``SNAPSHOT_CONCURRENCY`` queries in flight; None
    for one that cannot be read (no worker answered within the query timeout, it is gone, or its answer is
    sealed under a key this process lacks): that row degrades, never the page."""
    gate = asyncio.Semaphore(SNAPSHOT_CONCURRENCY)

    async def one(key: str) -> ReferralState | None:
        async with gate:
            try:
                return await snapshot(client, key)
            except ReferralError:
                return None

    unique = list(dict.fromkeys(keys))
    return dict(zip(unique, await asyncio.gather(*map(one, unique)), strict=True))


async def update(client: Client, key: str, update: Any, body: BaseModel) -> UpdateAnswer:
    """Run a workflow update; its answer says where the referral stands now (``snapshot`` for all of it). A
    refusal raises ``ClinicalDateRefused`` or ``Refused`` with the workflow's reason, ``Ended``, ``NoSuchReferral``,
    ``Unavailable`` or ``Unreadable``."""
    result: UpdateAnswer = await _execute(client, key, update, body)
    return result


async def retry_writes(client: Client, key: str) -> RetryWritesResult:
    """Send the writes the EHR refused for good again (the ``retry_writes`` update)."""
    result: RetryWritesResult = await _execute(client, key, ReferralWorkflow.retry_writes)
    return result


async def cancel(client: Client, key: str, body: CancelInput) -> None:
    """The ``cancel`` signal. The type is checked first: a workflow of another type would take it without a word."""
    await workflow_handle.require_referral(client, key)
    try:
        await workflow_handle.handle(client, key).signal(ReferralWorkflow.cancel, body)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:  # a referral whose workflow has ended
            raise Ended from None
        raise Unavailable from None


async def _execute(client: Client, key: str, update: Any, *args: BaseModel) -> Any:
    try:
        return await workflow_handle.handle(client, key).execute_update(update, *args)
    except workflow_handle.UNREADABLE_ANSWERS:
        raise Unreadable from None
    except WorkflowUpdateFailedError as error:
        raise await _refusal(client, key, error.cause) from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            # The server answers NOT_FOUND both for an unknown id and for a referral whose workflow has ended.
            raise await _ended_or_unknown(client, key) from None
        raise Unavailable from None


async def _refusal(client: Client, key: str, cause: BaseException | None) -> ReferralError:
    """The validator's message says which rule the request broke; it never carries patient data. A workflow of
    another type refuses every update as unknown to it: that key names no referral."""
    try:
        await workflow_handle.require_referral(client, key)
    except NoSuchReferral as unknown:
        return unknown
    except Unavailable:
        pass  # the refusal itself is still the answer
    if isinstance(cause, ApplicationError):  # its str() would lead with the type
        return ClinicalDateRefused(cause.message) if cause.type == CLINICAL_DATE_ERROR else Refused(cause.message)
    return Refused(str(cause))


async def _ended_or_unknown(client: Client, key: str) -> ReferralError:
    """``NoSuchReferral`` for an id that never was a referral; ``Ended`` naming the final phase for one that has."""
    try:
        state = await workflow_handle.snapshot(client, key)
    except NoSuchReferral as unknown:
        return unknown
    except (Unavailable, Unreadable):
        return Ended()
    return Ended(state.phase)
