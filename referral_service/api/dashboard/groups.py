"""Group attendance: pick a session (track, date, kind, minutes) and mark its whole roster in one form, by the
same roster logic as ``POST /api/groups/{group}/sessions`` (``referrals.groups``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from temporalio.client import Client

from referral_service.api.audit_trail import note_referrals
from referral_service.api.dashboard.forms import FormDep
from referral_service.api.dashboard.pages import page
from referral_service.api.deps import StateDep
from referral_service.domain.lifecycle import TEAM_PHASES
from referral_service.domain.program import Program, SessionKind
from referral_service.domain.program_day import Today
from referral_service.referrals import listing, operations
from referral_service.referrals.groups import GroupSessionInput, GroupSessionResult, RosterEntry, record_roster
from workflows.referral_types import ReferralState

router = APIRouter(tags=["dashboard"], include_in_schema=False)
ATTENDANCE_STATUSES = ("attended", "absent", "excused", "late")
DEFAULT_MINUTES = 180


@router.get("/groups", response_class=HTMLResponse)
async def groups(request: Request, services: StateDep) -> Response:
    """Pick a group session (track, date, kind, minutes); the roster of that track to mark in one form."""
    chosen = _session_choice(request.query_params, services.program)
    roster: list[ReferralState] = []
    error = None
    if chosen["track"]:
        roster, error = await _roster(services.temporal, chosen["track"])
    return page(
        request,
        "groups.html",
        title="Group attendance",
        roster=roster,
        results=None,
        list_error=error,
        **_group_context(services.program, chosen),
    )


@router.post("/groups", response_class=HTMLResponse)
async def mark_group(request: Request, form: FormDep, services: StateDep) -> Response:
    """Mark the whole roster (the group is the track and session kind, so the session id is
    ``<track>-<kind>-<date>``); shows each referral's result."""
    chosen = _session_choice(form.fields, services.program)
    entries = [
        RosterEntry.model_validate({"referral_id": name.removeprefix("status:"), "status": value})
        for name, value in form.fields.items()
        if name.startswith("status:") and value in ATTENDANCE_STATUSES
    ]
    results: GroupSessionResult | None = None
    problem = None
    try:
        body = GroupSessionInput(
            date=chosen["date"],
            kind=chosen["kind"],
            minutes=chosen["minutes"],
            track_id=chosen["track"],
            entries=entries,
        )
    except ValidationError:
        problem = "pick a track, a date, minutes between 1 and 600, and at least one referral"
    else:
        note_referrals(request, (entry.referral_id for entry in entries))
        results = await record_roster(services.temporal, f"{chosen['track']}-{chosen['kind']}", body)
    roster, error = await _roster(services.temporal, chosen["track"]) if chosen["track"] else ([], None)
    return page(
        request,
        "groups.html",
        title="Group attendance",
        roster=roster,
        results=results,
        list_error=problem or error,
        status=400 if problem else 200,
        **_group_context(services.program, chosen),
    )


def _session_choice(given: Mapping[str, str], program: Program) -> dict[str, Any]:
    """The group session picked in the form or the query; unknown values fall back to defaults (the date: today
    in the program's zone)."""
    track = given.get("track", "")
    kind = given.get("kind", "")
    try:
        day = date.fromisoformat(given.get("date", ""))
    except ValueError:
        day = Today.at(datetime.now(UTC), program.time_zone).day
    try:
        minutes = int(given.get("minutes", "") or DEFAULT_MINUTES)
    except ValueError:
        minutes = DEFAULT_MINUTES
    return {
        "track": track if track in {t.id for t in program.tracks} else "",
        "date": day,
        "kind": kind if kind in {k.value for k in SessionKind} else SessionKind.GROUP.value,
        "minutes": minutes,
    }


def _group_context(program: Program, chosen: dict[str, Any]) -> dict[str, Any]:
    return {
        "chosen": chosen,
        "tracks": program.tracks,
        "kinds": [(kind.value, kind.value.replace("_", " ")) for kind in SessionKind],
        "statuses": ATTENDANCE_STATUSES,
    }


async def _roster(client: Client, track: str) -> tuple[list[ReferralState], str | None]:
    """Referrals on ``track`` expected in the room, by their snapshot (fresher than the search index)."""
    try:
        summaries = await listing.find(client, phases=[phase.value for phase in TEAM_PHASES], track=track)
    except Exception:  # the visibility store out of reach: show the page, say so
        return [], "the workflow service is unavailable; reload to retry"
    snapshots = await operations.snapshots(client, (row.key for row in summaries))
    roster = [s for s in snapshots.values() if s and s.track_id == track and s.phase in TEAM_PHASES]
    return sorted(roster, key=lambda s: s.key), None
