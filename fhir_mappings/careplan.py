"""Treatment and aftercare CarePlans (US Core category assess-plan)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from fhir_mappings import codes
from fhir_mappings.common import business_identifier, concept, reference, validated
from referral_service.domain.program import Track
from referral_service.domain.referral import Referral, ResourceRef

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ACTIVITY_STATUS = {"active": "scheduled", "completed": "completed", "revoked": "cancelled"}


def _plan(
    referral: Referral,
    *,
    key: str,
    status: str,
    title: str,
    start: date,
    end: date | None,
    care_team: ResourceRef | None,
    activities: list[dict[str, Any]],
    assessments: list[ResourceRef],
    team_members: Sequence[str] = (),
) -> dict[str, Any]:
    period = {"start": start.isoformat(), **({"end": end.isoformat()} if end else {})}
    plan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "identifier": business_identifier(key),
        # R4 CarePlan.basedOn may only point at a CarePlan; the referral is information the plan rests on.
        # The assessment Observations recorded so far follow it: the plan rests on their scores too.
        "supportingInfo": [reference(referral.service_request), *(reference(a) for a in assessments)],
        "status": status,
        "intent": "plan",
        "category": [concept(codes.US_CORE_CAREPLAN_CATEGORY, "assess-plan", "Assessment and Plan of Treatment")],
        "title": title,
        "subject": reference(referral.patient.ref),
        "period": period,
        "activity": activities,
    }
    if care_team is not None:
        plan["careTeam"] = [reference(care_team)]
    if team_members:  # by name, as in the CareTeam: a reassigned team revises the plan it contributes to
        plan["contributor"] = [{"display": name} for name in team_members]
    return validated(plan)


def treatment_plan(
    referral: Referral,
    track: Track,
    *,
    key: str,
    status: str,
    start: date,
    care_team: ResourceRef | None,
    end: date | None = None,
    assessments: list[ResourceRef] | None = None,
    team_members: Sequence[str] = (),
) -> dict[str, Any]:
    """One activity per session kind on the track's days and hours; ``end`` defaults to the planned end;
    ``assessments`` (Observations) are listed in ``supportingInfo``; ``team_members`` (staff names) are its
    contributors."""
    timing = {
        "repeat": {
            "dayOfWeek": [WEEKDAYS[d - 1] for d in track.days],
            "timeOfDay": [f"{track.start_hour:02d}:00:00"],
            "duration": track.hours_per_day,
            "durationUnit": "h",
        }
    }
    activities = []
    for kind in track.session_kinds:
        cpt, display = codes.SESSION_CPT[kind]
        activities.append(
            {
                "detail": {
                    "kind": "Appointment",
                    "code": concept(codes.CPT, cpt, display, text=kind.value),
                    "status": ACTIVITY_STATUS.get(status, "scheduled"),
                    "scheduledTiming": timing,
                }
            }
        )
    return _plan(
        referral,
        key=key,
        status=status,
        title=f"IOP treatment plan: {track.name}",
        start=start,
        end=end or start + timedelta(weeks=track.length_weeks),
        care_team=care_team,
        activities=activities,
        assessments=assessments or [],
        team_members=team_members,
    )


def aftercare_plan(
    referral: Referral,
    *,
    key: str,
    start: date,
    follow_up_days: list[int],
    care_team: ResourceRef | None,
    status: str = "active",
) -> dict[str, Any]:
    """Follow-up contacts after program discharge (7 and 30 days by default); completed at closure."""
    activities = [
        {
            "detail": {
                "kind": "Appointment",
                "status": ACTIVITY_STATUS.get(status, "scheduled"),
                "description": f"Follow-up contact {day} days after discharge",
                "scheduledPeriod": {"start": (start + timedelta(days=day)).isoformat()},
            }
        }
        for day in follow_up_days
    ]
    return _plan(
        referral,
        key=key,
        status=status,
        title="IOP aftercare plan",
        start=start,
        end=start + timedelta(days=max(follow_up_days)),
        care_team=care_team,
        activities=activities,
        assessments=[],
    )
