"""The case-manager API: list referrals (the read model), read one (query), and drive it (updates)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from referral_service.api import page_tokens, referral_workflow
from referral_service.api.access import principal_of
from referral_service.api.caseloads import with_caseloads
from referral_service.api.deps import AppState, ReadModelDep, StateDep
from referral_service.api.referral_list import FAILED, RowViewer
from referral_service.api.referral_workflow import UNREADABLE_ANSWERS, NotAReferral, Unavailable, Unreadable
from referral_service.api.role_views import view_of
from referral_service.store.referrals import RowQuery, StoredRow
from workflows import search_attributes
from workflows.referral import CLINICAL_DATE_ERROR, ReferralWorkflow
from workflows.referral_types import (
    CancelInput,
    DischargeInput,
    FollowUpInput,
    ReassignTeamInput,
    RecordAssessmentInput,
    RecordSessionInput,
    ReferralState,
    RetryWritesResult,
    ScreeningDecisionInput,
)

router = APIRouter(prefix="/api/referrals", tags=["referrals"])
# Snapshot queries in flight at once when a page or a measure needs many: each one is a worker task.
SNAPSHOT_CONCURRENCY = 16
# The list's paging: the token for the next page travels in this header, so the body stays a plain list.
NEXT_PAGE_HEADER = "X-Next-Page-Token"
# What a list shows as the phase of a referral whose workflow ended without finishing its story (never an EHR
# refusal: those are recorded and the referral goes on); ``phase=failed`` lists them.
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


@router.get(
    "",
    responses={
        200: {
            "headers": {
                NEXT_PAGE_HEADER: {
                    "description": "present when more referrals match: send it back as page_token for the next page",
                    "schema": {"type": "string"},
                }
            }
        },
        400: {"description": "a page_token this list did not give"},
    },
)
async def list_referrals(
    request: Request,
    services: StateDep,
    read_model: ReadModelDep,
    response: Response,
    phase: Annotated[str | None, Query(pattern=r"^[a-z_]+$")] = None,
    track: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]+$")] = None,
    source: Annotated[str | None, Query(pattern=r"^[a-z0-9-]+$")] = None,
    at_risk: bool | None = None,
    overdue: Annotated[bool | None, Query(description="true: the next deadline has passed; false: it has not")] = None,
    refused_writes: Annotated[
        bool | None, Query(description="true: the EHR refused some of its writes (retry them); false: none")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="a word of the patient's name (whole word, any case or accent) or part of the order number",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="referrals per page")] = 200,
    page_token: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,4096}$")] = None,
) -> list[ReferralSummary]:
    """Referrals, newest first, filtered by phase, track, source, at-risk flag, overdue, refused writes and ``q``
    (patient name or order number), one page of at most ``limit``, from the read model; the ``X-Next-Page-Token``
    header, when present, asks for the next page (same filters). Each row shows the patient and the referrer as
    the caller's role may see them. ``phase=failed`` lists referrals whose workflow failed (from the workflow
    service's search index: the read model knows the referral's story, not its workflow's fate)."""
    # What a page token is bound to: the filters as given (the overdue clause's "now" moves between pages).
    filters = f"{phase}|{track}|{source}|{at_risk}|{overdue}|{refused_writes}|{q}"
    token = None
    if page_token is not None:
        token = page_tokens.unseal(page_token, filters, services.page_token_secret)
        if token is None:
            raise HTTPException(400, detail="page_token is not one this list gave for these filters; start again")
    if phase == FAILED:
        if q is not None:  # the search index holds no patient data to search (and never will)
            raise HTTPException(400, detail="q cannot be combined with phase=failed")
        visibility = referral_query(
            phases=(FAILED,),
            track=track,
            source=source,
            at_risk=at_risk,
            overdue=overdue,
            refused_writes=refused_writes,
        )
        return await _list_failed(services, response, filters, token, visibility, limit)
    offset = int(token) if token is not None and token.isdigit() else 0
    query = RowQuery(
        open_only=False,
        phases=(phase,) if phase is not None else (),
        track_id=track,
        source_id=source,
        at_risk=at_risk,
        overdue=overdue,
        refused_writes=refused_writes,
        text=q,
        limit=limit + 1,  # one more than the page: whether another page follows
        offset=offset,
    )
    found = await read_model.find(query)
    if len(found) > limit:
        response.headers[NEXT_PAGE_HEADER] = page_tokens.seal(
            str(offset + limit).encode(), filters, services.page_token_secret
        )
    viewer = RowViewer(principal_of(request).roles, services.program, failed=await failed_referrals(services))
    return [row_summary(stored, viewer) for stored in found[:limit]]


def row_summary(stored: StoredRow, viewer: RowViewer) -> ReferralSummary:
    row = stored.row
    return ReferralSummary(
        key=row.key,
        phase=viewer.phase(stored),
        track=row.track_id,
        source=row.source_id,
        at_risk=row.at_risk,
        next_deadline=row.next_deadline,
        status=viewer.status(stored),
        refused_writes=row.refused_writes,
        referrer=viewer.referrer(stored),
        patient=viewer.person(stored),
        readable=stored.readable,
    )


async def _list_failed(
    services: AppState,
    response: Response,
    filters: str,
    token: bytes | None,
    query: str,
    limit: int,
) -> list[ReferralSummary]:
    """Referrals whose workflow failed: a visibility query, paged by the visibility store's own tokens."""
    listing = services.temporal.list_workflows(query, page_size=limit, next_page_token=token)
    try:
        await listing.fetch_next_page()
    except RPCError as error:
        raise _http_error(error) from None
    if listing.next_page_token:
        response.headers[NEXT_PAGE_HEADER] = page_tokens.seal(
            listing.next_page_token, filters, services.page_token_secret
        )
    return [_summary(execution) for execution in listing.current_page or ()]


async def failed_referrals(services: AppState) -> dict[str, str]:
    """Referrals on this service's task queue whose workflow failed or was terminated (key -> status): their rows
    still say where they stopped. One search-index query; none known when the index cannot be reached."""
    query = f"WorkflowType = 'ReferralWorkflow' AND TaskQueue = '{services.settings.task_queue}' AND {_failed_clause()}"
    try:
        return {
            execution.id: execution.status.name.lower()
            async for execution in services.temporal.list_workflows(query, limit=FAILED_LIMIT)
            if execution.status in FAILED_STATUSES
        }
    except RPCError:
        return {}


async def find_referrals(
    services: AppState,
    *,
    phases: Sequence[str] = (),
    track: str | None = None,
    source: str | None = None,
    at_risk: bool | None = None,
    limit: int = 200,
) -> list[ReferralSummary]:
    """Up to ``limit`` referrals in any of ``phases``, with the filters (the dashboard's and measures' lists)."""
    query = referral_query(phases=phases, track=track, source=source, at_risk=at_risk)
    return [_summary(execution) async for execution in services.temporal.list_workflows(query, limit=limit)]


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


def _summary(execution: WorkflowExecution) -> ReferralSummary:
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


@router.get("/{key}")
async def read_referral(key: str, request: Request, services: StateDep) -> dict[str, Any]:
    """One referral's snapshot as the caller's role may see it (``role_views``: fields another role needs are
    left out; ``view`` names the parts shown and withheld). Program admins see all of ``ReferralState``."""
    return _as_seen(request, await read_snapshot(services, key))


def _as_seen(request: Request, state: ReferralState) -> dict[str, Any]:
    return view_of(state, principal_of(request).roles)


async def read_snapshot(services: AppState, key: str) -> ReferralState:
    """The ``snapshot`` query; HTTPException 404 for a key that names no referral (nothing, or a workflow of
    another type), 503 when Temporal is out of reach, no worker answers in time or the answer cannot be opened."""
    try:
        return await referral_workflow.snapshot(services.temporal, key)
    except NotAReferral:
        raise _no_such_referral() from None
    except Unavailable:
        raise _unavailable() from None
    except Unreadable:
        raise _unreadable() from None


async def read_snapshots(services: AppState, keys: Iterable[str]) -> dict[str, ReferralState | None]:
    """Snapshots of many referrals (each key once), at most ``SNAPSHOT_CONCURRENCY`` queries in flight; None
    for one that cannot be read (no worker answered within the query timeout, it is gone, or its answer is
    sealed under a key this process lacks): that row degrades, never the page."""
    gate = asyncio.Semaphore(SNAPSHOT_CONCURRENCY)

    async def one(key: str) -> ReferralState | None:
        async with gate:
            try:
                return await read_snapshot(services, key)
            except HTTPException:
                return None

    unique = list(dict.fromkeys(keys))
    return dict(zip(unique, await asyncio.gather(*map(one, unique)), strict=True))


@router.post("/{key}/decision")
async def decide(
    key: str, body: ScreeningDecisionInput, request: Request, services: StateDep, rows: ReadModelDep
) -> dict[str, Any]:
    """Accept (track, intake time), decline (coded reason) or waitlist. An acceptance assigns the team by the
    caseloads the service counts (open referrals per staff member); ``caseloads`` in the body is ignored."""
    decision = await with_caseloads(rows, body)
    return _as_seen(request, await run_update(services, key, ReferralWorkflow.decide, decision))


@router.post("/{key}/sessions")
async def record_session(key: str, body: RecordSessionInput, request: Request, services: StateDep) -> dict[str, Any]:
    """Record a session (attended or missed); an attended one is written to the EHR as an Encounter. A date a
    clinical date rule refuses (after today in the program's time zone, before the hospital discharge, after the
    program discharge) answers 422 naming the rule."""
    return _as_seen(request, await run_update(services, key, ReferralWorkflow.record_session, body))


@router.post("/{key}/assessments")
async def record_assessment(
    key: str, body: RecordAssessmentInput, request: Request, services: StateDep
) -> dict[str, Any]:
    """Record an assessment score (PHQ-9, GAD-7, AUDIT-C, C-SSRS); it is written to the EHR as an Observation.
    The same ``assessment_id`` again replaces it (same Observation); a score out of the instrument's range or a
    referral not between acceptance and discharge answers 409 saying which, a date after today (program time
    zone) 422 naming the rule ``assessment-in-future``."""
    return _as_seen(request, await run_update(services, key, ReferralWorkflow.record_assessment, body))


@router.post("/{key}/discharge")
async def discharge(key: str, body: DischargeInput, request: Request, services: StateDep) -> dict[str, Any]:
    """Discharge from the program with a coded reason. A date after today (program time zone), before the
    acceptance or before an attended session answers 422 naming the rule; a phase that takes no discharge 409."""
    return _as_seen(request, await run_update(services, key, ReferralWorkflow.discharge, body))


@router.post("/{key}/team")
async def reassign_team(
    key: str, body: ReassignTeamInput, request: Request, services: StateDep, rows: ReadModelDep
) -> dict[str, Any]:
    """Give care-team roles to other roster members, e.g. ``{"members": {"primary_therapist": "lmft-chen"}}``
    (staff ids from the program's roster; their caseloads are the service's count, ``caseloads`` in the body is
    ignored). The CareTeam is rewritten in the EHR
    and the CarePlan revised; the snapshot's ``team_history`` keeps the previous assignment. An unknown member,
    one of another role or track, a role the track's teams lack, a member at their caseload limit, or a referral
    not between acceptance and discharge answers 409 saying which; a role already held by that member is no
    change."""
    reassignment = await with_caseloads(rows, body)
    return _as_seen(request, await run_update(services, key, ReferralWorkflow.reassign_team, reassignment))


@router.post("/{key}/follow-ups")
async def record_follow_up(key: str, body: FollowUpInput, request: Request, services: StateDep) -> dict[str, Any]:
    return _as_seen(request, await run_update(services, key, ReferralWorkflow.record_follow_up, body))


@router.post("/{key}/retry-writes")
async def retry_writes(key: str, services: StateDep) -> RetryWritesResult:
    """Send the writes the EHR refused for good again, once the cause is fixed on the EHR's side: each resource as
    the referral stands now. The answer lists the writes the EHR took and those it refused again; a referral
    with no refused write answers 409."""
    return await retry_refused_writes(services, key)


async def retry_refused_writes(services: AppState, key: str) -> RetryWritesResult:
    """The ``retry_writes`` update (also the dashboard's button)."""
    result: RetryWritesResult = await _execute_update(services, key, ReferralWorkflow.retry_writes)
    return result


@router.post("/{key}/cancel", status_code=202)
async def cancel(key: str, body: CancelInput, services: StateDep) -> dict[str, str]:
    """Cancel (a signal: accepted at once, applied by the workflow)."""
    await send_cancel(services, key, body)
    return {"status": "accepted"}


async def send_cancel(services: AppState, key: str, body: CancelInput) -> None:
    """The ``cancel`` signal (also the dashboard's cancel form); HTTPException 404 or 503 when not delivered.

    The type is checked first: a workflow of another type would take the signal without a word."""
    try:
        await referral_workflow.require_referral(services.temporal, key)
        await referral_workflow.handle(services.temporal, key).signal(ReferralWorkflow.cancel, body)
    except NotAReferral:
        raise _no_such_referral() from None
    except Unavailable:
        raise _unavailable() from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:  # a referral whose workflow has ended
            raise HTTPException(409, detail="this referral has ended and takes no more changes") from None
        raise _unavailable() from None


async def run_update(services: AppState, key: str, update: Any, body: BaseModel) -> ReferralState:
    """Run a workflow update; a refused one raises HTTPException: 422 under a clinical date rule, 409 for any
    other rule (both with the workflow's reason), 404 for a key that names no referral, 503."""
    result: ReferralState = await _execute_update(services, key, update, body)
    return result


async def _execute_update(services: AppState, key: str, update: Any, *args: BaseModel) -> Any:
    try:
        return await referral_workflow.handle(services.temporal, key).execute_update(update, *args)
    except UNREADABLE_ANSWERS:
        raise _unreadable() from None
    except WorkflowUpdateFailedError as error:
        raise await _refusal(services, key, error.cause) from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            # The server answers NOT_FOUND both for an unknown id and for a referral whose workflow has ended.
            raise await _ended_or_unknown(services, key) from None
        raise _unavailable() from None


async def _refusal(services: AppState, key: str, cause: BaseException | None) -> HTTPException:
    """The validator's message says which rule the request broke; it never carries patient data. A workflow of
    another type refuses every update as unknown to it: that key names no referral."""
    try:
        await referral_workflow.require_referral(services.temporal, key)
    except NotAReferral:
        return _no_such_referral()
    except Unavailable:
        pass  # the refusal itself is still the answer
    if isinstance(cause, ApplicationError):  # its str() would lead with the type
        return HTTPException(422 if cause.type == CLINICAL_DATE_ERROR else 409, detail=cause.message)
    return HTTPException(409, detail=str(cause))


async def _ended_or_unknown(services: AppState, key: str) -> HTTPException:
    """404 for an id that never was a referral; 409 naming the final phase for one that has ended."""
    try:
        state = await referral_workflow.snapshot(services.temporal, key)
    except NotAReferral:
        return _no_such_referral()
    except (Unavailable, Unreadable):
        return HTTPException(409, detail="this referral has ended and takes no more changes")
    return HTTPException(409, detail=f"this referral has ended (phase {state.phase}) and takes no more changes")


def _http_error(error: RPCError) -> HTTPException:
    return _no_such_referral() if error.status == RPCStatusCode.NOT_FOUND else _unavailable()


def _no_such_referral() -> HTTPException:
    return HTTPException(404, detail="no such referral")


def _unavailable() -> HTTPException:
    return HTTPException(503, detail="the workflow service is unavailable; retry")


def _unreadable() -> HTTPException:
    """The workflow answered, but under a key this process's ring does not hold (an operator's fix, not a retry)."""
    return HTTPException(503, detail="this referral's state cannot be read by this service (payload key ring)")
