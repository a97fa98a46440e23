"""One referral's workflow by key, for every operation that reads or drives one.

A key is the caller's text: it may name no workflow, or a workflow of another type (a poll schedule's run),
running or finished. Each is ``NoSuchReferral`` here, so every surface answers it as an unknown referral. The
workflow type is checked only when a call has failed, so a referral costs no extra round trip.

A snapshot this process cannot open (sealed under a key its ring no longer holds, or of a shape it no longer
reads) is ``Unreadable``: a list shows that row as unreadable, a page about the one referral says so.
"""

from __future__ import annotations

from datetime import timedelta

from cryptography.exceptions import InvalidTag
from pydantic import ValidationError
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from referral_service.codec import KeyRingError
from referral_service.referrals.errors import NoSuchReferral, Unavailable, Unreadable
from workflows.referral import ReferralWorkflow
from workflows.referral_types import ReferralState

# A query needs a worker; without a limit it would hang for 30 s.
QUERY_TIMEOUT = timedelta(seconds=5)
_WORKFLOW_TYPE = ReferralWorkflow.__name__  # @workflow.defn names it after the class


# What decoding an answer raises when its payload is sealed under a key the ring lacks (KeyRingError), was
# tampered with (InvalidTag) or no longer fits the state's model (ValidationError).
UNREADABLE_ANSWERS = (KeyRingError, InvalidTag, ValidationError)


def handle(client: Client, key: str) -> WorkflowHandle[ReferralWorkflow, ReferralState]:
    return client.get_workflow_handle_for(ReferralWorkflow.run, key)


async def snapshot(client: Client, key: str) -> ReferralState:
    """The referral's ``snapshot`` query."""
    try:
        return await handle(client, key).query(ReferralWorkflow.snapshot, rpc_timeout=QUERY_TIMEOUT)
    except UNREADABLE_ANSWERS:
        raise Unreadable from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NoSuchReferral from None
        await require_referral(client, key)  # another type's run no worker replays times out: still unknown
        raise Unavailable from None
    except WorkflowQueryFailedError:  # a workflow of another type has no such query
        await require_referral(client, key)
        raise Unavailable from None


async def require_referral(client: Client, key: str) -> None:
    """Return when ``key`` names a ReferralWorkflow (any run, running or ended); else ``NoSuchReferral``.

    Read from the raw description: the SDK's decoding of it can trip on an unset datetime search attribute."""
    request = DescribeWorkflowExecutionRequest(namespace=client.namespace, execution=WorkflowExecution(workflow_id=key))
    try:
        described = await client.workflow_service.describe_workflow_execution(request, timeout=QUERY_TIMEOUT)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NoSuchReferral from None
        raise Unavailable from None
    if described.workflow_execution_info.type.name != _WORKFLOW_TYPE:
        raise NoSuchReferral
