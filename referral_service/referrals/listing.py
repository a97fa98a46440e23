"""Finding referrals in the workflow service's search index: the failed ones (the read model knows a referral's
story, not its workflow's fate) and the visibility query behind the lists that still read it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from referral_service.referrals.errors import NoSuchReferral, Unavailable
from workflows import search_attributes

# What a list shows as the phase of a referral whose workflow ended without finishing its story (never an EHR
# refusal: those are recorded and the referral goes on); ``phase=failed`` lists them.
FAILED = "failed"
FAILED_LIMIT = 1000  # failed referrals a list marks as such (an operator's to clear long before this many)
FAILED_STATUSES = {
    WorkflowExecutionStatus.FAILED: "Failed",
    WorkflowExecutionStatus.TERMINATED: "Terminated",
    WorkflowExecutionStatus.TIMED_OUT: "TimedOut",
}


class ReferralSummary(BaseModel):
    """One row of a list: ids, codes and flags; the patient and the referrer as the caller's role may see them."""

    key: str
    phase: str | None
    track: str | None
    source: str | None
    at_risk: bool
    next_deadline: datetime | None
    status: str
    refused_writes: int = 0  # writes the EHR refused for good, not yet sent again
    referrer: str | None = None  # the requester's name (roles that see the order)
    # The patient's fields the caller's roles may see (``role_views``: name, sex, age; MRN, birth date, phone);
    # None when the row's sealed details cannot be opened (``readable`` False) or when listed from visibility.
    patient: dict[str, Any] | None = None
    readable: bool = True


async def failed_referrals(client: Client, task_queue: str) -> dict[str, str]:
    """Referrals on ``task_queue`` whose workflow failed or was terminated (key -> status): their rows still say
    where they stopped. One search-index query; none known when the index cannot be reached."""
    query = f"WorkflowType = 'ReferralWorkflow' AND TaskQueue = '{task_queue}' AND {_failed_clause()}"
    try:
        return {
            execution.id: execution.status.name.lower()
            async for execution in client.list_workflows(query, limit=FAILED_LIMIT)
            if execution.status in FAILED_STATUSES
        }
    except RPCError:
        return {}


async def failed_page(
    client: Client, query: str, limit: int, token: bytes | None
) -> tuple[list[ReferralSummary], bytes | None]:
    """One page of a visibility query's referrals, and the visibility store's token for the next."""
    listing = client.list_workflows(query, page_size=limit, next_page_token=token)
    try:
        await listing.fetch_next_page()
    except RPCError as error:
        raise (NoSuchReferral() if error.status == RPCStatusCode.NOT_FOUND else Unavailable()) from None
    return [summary_of(execution) for execution in listing.current_page or ()], listing.next_page_token or None


async def find(
    client: Client,
    *,
    phases: Sequence[str] = (),
    track: str | None = None,
    limit: int = 200,
) -> list[ReferralSummary]:
    """Up to ``limit`` referrals in any of ``phases`` on ``track``, from the search index."""
    query = referral_query(phases=phases, track=track)
    return [summary_of(execution) async for execution in client.list_workflows(query, limit=limit)]


def referral_query(
    *,
    phases: Sequence[str] = (),
    track: str | None = None,
    source: str | None = None,
    at_risk: bool | None = None,
    overdue: bool | None = None,
    refused_writes: bool | None = None,
) -> str:
    """The visibility query behind every list: any of ``phases`` (``failed``: the workflow failed), and the filters.

    Callers pass only pattern-checked values or enum members: they are put into the query text."""
    clauses = ["WorkflowType = 'ReferralWorkflow'"]
    if phases:
        matches = [
            f"{search_attributes.PHASE.name} = '{value}'" if value != FAILED else _failed_clause() for value in phases
        ]
        clauses.append("(" + " OR ".join(matches) + ")")
    for key, value in (
        (search_attributes.TRACK, track),
        (search_attributes.SOURCE, source),
    ):
        if value is not None:
            clauses.append(f"{key.name} = '{value}'")
    if at_risk is not None:
        clauses.append(f"{search_attributes.AT_RISK.name} = {str(at_risk).lower()}")
    if overdue is not None:
        clauses.append(_overdue_clause(overdue, datetime.now(UTC)))
    if refused_writes is not None:
        refused = search_attributes.REFUSED_WRITES.name
        clauses.append(f"{refused} > 0" if refused_writes else f"({refused} = 0 OR {refused} IS NULL)")
    return " AND ".join(clauses)


def _failed_clause() -> str:
    return "(" + " OR ".join(f"ExecutionStatus = '{name}'" for name in FAILED_STATUSES.values()) + ")"


def _overdue_clause(overdue: bool, now: datetime) -> str:
    deadline, at = search_attributes.NEXT_DEADLINE.name, now.isoformat(timespec="seconds").replace("+00:00", "Z")
    if overdue:
        return f"{deadline} < '{at}'"
    return f"({deadline} >= '{at}' OR {deadline} IS NULL)"  # no deadline ahead is not overdue either


def summary_of(execution: WorkflowExecution) -> ReferralSummary:
    attrs = execution.typed_search_attributes
    failed = execution.status in FAILED_STATUSES  # its last phase would say it is still under way
    return ReferralSummary(
        key=execution.id,
        phase=FAILED if failed else attrs.get(search_attributes.PHASE),
        track=attrs.get(search_attributes.TRACK),
        source=attrs.get(search_attributes.SOURCE),
        at_risk=bool(attrs.get(search_attributes.AT_RISK)),
        next_deadline=attrs.get(search_attributes.NEXT_DEADLINE),
        status=execution.status.name.lower() if execution.status else "unknown",
        refused_writes=attrs.get(search_attributes.REFUSED_WRITES) or 0,
    )
