"""The case-manager API: list referrals (the read model), read one (query), and drive it (updates)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel

from referral_service.api import page_tokens
from referral_service.api.access import principal_of
from referral_service.api.caseloads import with_caseloads
from referral_service.api.deps import AppState, ReadModelDep, StateDep
from referral_service.api.referral_list import RowViewer, viewer_for
from referral_service.api.role_views import view_of
from referral_service.referrals import operations
from referral_service.referrals.listing import (
    FAILED,
    ReferralSummary,
    failed_page,
    referral_query,
)
from referral_service.store.referrals import RowQuery, StoredRow
from workflows.referral import ReferralWorkflow
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
# The list's paging: the token for the next page travels in this header, so the body stays a plain list.
NEXT_PAGE_HEADER = "X-Next-Page-Token"


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
        found_failed, next_token = await failed_page(services.temporal, visibility, limit, token)
        if next_token:
            response.headers[NEXT_PAGE_HEADER] = page_tokens.seal(next_token, filters, services.page_token_secret)
        return found_failed
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
    viewer = await viewer_for(request, services)
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


@router.get("/{key}")
async def read_referral(key: str, request: Request, services: StateDep) -> dict[str, Any]:
    """One referral's snapshot as the caller's role may see it (``role_views``: fields another role needs are
    left out; ``view`` names the parts shown and withheld). Program admins see all of ``ReferralState``."""
    return _as_seen(request, await operations.snapshot(services.temporal, key))


def _as_seen(request: Request, state: ReferralState) -> dict[str, Any]:
    return view_of(state, principal_of(request).roles)


async def _updated(request: Request, services: AppState, key: str, update: Any, body: BaseModel) -> dict[str, Any]:
    """Run the update, then answer with the referral as it stands (the ``snapshot`` query, as the caller's role may
    see it): an update's own answer is short, because the history keeps it."""
    await operations.update(services.temporal, key, update, body)
    return _as_seen(request, await operations.snapshot(services.temporal, key))


@router.post("/{key}/decision")
async def decide(
    key: str, body: ScreeningDecisionInput, request: Request, services: StateDep, rows: ReadModelDep
) -> dict[str, Any]:
    """Accept (track, intake time), decline (coded reason) or waitlist. An acceptance assigns the team by the
    caseloads the service counts (open referrals per staff member); ``caseloads`` in the body is ignored."""
    decision = await with_caseloads(rows, body)
    return await _updated(request, services, key, ReferralWorkflow.decide, decision)


@router.post("/{key}/sessions")
async def record_session(key: str, body: RecordSessionInput, request: Request, services: StateDep) -> dict[str, Any]:
    """Record a session (attended or missed); an attended one is written to the EHR as an Encounter. A date a
    clinical date rule refuses (after today in the program's time zone, before the hospital discharge, after the
    program discharge) answers 422 naming the rule."""
    return await _updated(request, services, key, ReferralWorkflow.record_session, body)


@router.post("/{key}/assessments")
async def record_assessment(
    key: str, body: RecordAssessmentInput, request: Request, services: StateDep
) -> dict[str, Any]:
    """Record an assessment score (PHQ-9, GAD-7, AUDIT-C, C-SSRS); it is written to the EHR as an Observation.
    The same ``assessment_id`` again replaces it (same Observation); a score out of the instrument's range or a
    referral not between acceptance and discharge answers 409 saying which, a date after today (program time
    zone) 422 naming the rule ``assessment-in-future``."""
    return await _updated(request, services, key, ReferralWorkflow.record_assessment, body)


@router.post("/{key}/discharge")
async def discharge(key: str, body: DischargeInput, request: Request, services: StateDep) -> dict[str, Any]:
    """Discharge from the program with a coded reason. A date after today (program time zone), before the
    acceptance or before an attended session answers 422 naming the rule; a phase that takes no discharge 409."""
    return await _updated(request, services, key, ReferralWorkflow.discharge, body)


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
    return await _updated(request, services, key, ReferralWorkflow.reassign_team, reassignment)


@router.post("/{key}/follow-ups")
async def record_follow_up(key: str, body: FollowUpInput, request: Request, services: StateDep) -> dict[str, Any]:
    return await _updated(request, services, key, ReferralWorkflow.record_follow_up, body)


@router.post("/{key}/retry-writes")
async def retry_writes(key: str, services: StateDep) -> RetryWritesResult:
    """Send the writes the EHR refused for good again, once the cause is fixed on the EHR's side: each resource as
    the referral stands now. The answer lists the writes the EHR took and those it refused again; a referral
    with no refused write answers 409."""
    return await operations.retry_writes(services.temporal, key)


@router.post("/{key}/cancel", status_code=202)
async def cancel(key: str, body: CancelInput, services: StateDep) -> dict[str, str]:
    """Cancel (a signal: accepted at once, applied by the workflow)."""
    await operations.cancel(services.temporal, key, body)
    return {"status": "accepted"}
