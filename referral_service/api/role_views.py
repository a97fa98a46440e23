"""Minimum necessary: which parts of a referral's snapshot each staff role sees. The one definition the JSON
API (``GET /api/referrals/{key}``), the CLI (``show`` reads that JSON) and the dashboard's referral page use.

A snapshot field reaches a caller only when a part listed here names it and one of the caller's roles has
that part (deny by default: ``tests/security/test_role_views.py`` checks every field of ``ReferralState`` is
in some part, so a new field is classified before anyone sees it). README "Access" has the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from referral_service.api.tokens import Role
from referral_service.domain.program_day import Today
from referral_service.domain.referral_row import RowPerson
from workflows.referral_types import ReferralState


class Part(StrEnum):
    WORKFLOW = "workflow"  # where the referral stands: phase, decision, deadlines, timeline, possible duplicates
    ORDER = "order"  # the order as screening reads it: reason, priority, dates, referrer, where from, note
    IDENTITY = "identity"  # whom it is about, enough to recognise them: name, sex, age
    RECORD = "record"  # the patient's chart: birth date, MRN and other identifiers, chart and encounter ids
    CONTACT = "contact"  # how to reach the patient: phone
    TEAM = "team"  # the care team (staff) and its history
    CARE = "care"  # sessions, assessment scores, program discharge, aftercare follow-ups
    EHR_WRITES = "ehr_writes"  # what was written to the EHR, what it refused
    COVERAGE = "coverage"  # the patient's insurance coverage references


# Dotted paths into the snapshot's JSON (plus the computed ``referral.patient.age``).
PATHS: dict[Part, tuple[str, ...]] = {
    Part.WORKFLOW: (
        "key",
        "program",
        "received_at",
        "phase",
        "track_id",
        "decline_reason",
        "intake_at",
        "treatment_start",
        "task_status",
        "at_risk",
        "overdue",
        "next_deadline",
        "cancellation",
        "timeline",
        "possible_duplicates",
        "referral.source_id",
        "referral.service_request",
        "referral.placer_identifier",
        "referral.status",
        "referral.intent",
        "referral.warnings",
    ),
    Part.ORDER: (
        "referral.priority",
        "referral.authored_on",
        "referral.requester",
        "referral.requester_organization",
        "referral.performer",
        "referral.codes",
        "referral.reasons",
        "referral.note",
        "referral.discharge.from_setting",
        "referral.discharge.discharge_date",
    ),
    Part.IDENTITY: (
        "referral.patient.family",
        "referral.patient.given",
        "referral.patient.gender",
        "referral.patient.age",
    ),
    Part.RECORD: (
        "referral.patient.ref",
        "referral.patient.identifiers",
        "referral.patient.birth_date",
        "referral.discharge.encounter",
    ),
    Part.CONTACT: ("referral.patient.phone",),
    Part.TEAM: ("team", "team_history"),
    Part.CARE: ("sessions", "assessments", "discharge", "follow_ups"),
    Part.EHR_WRITES: ("writes", "refused"),
    Part.COVERAGE: ("referral.coverage",),
}

_SCREENING = frozenset({Part.WORKFLOW, Part.ORDER, Part.IDENTITY, Part.TEAM})
_CARING = _SCREENING | {Part.RECORD, Part.CONTACT, Part.CARE, Part.EHR_WRITES}
# One view per staff role. Coordinators screen: the order and whom it is about, not the chart or the care;
# clinicians and case managers run the care and call the patient; program admins see everything (coverage too).
VIEWS: dict[Role, frozenset[Part]] = {
    Role.INTAKE_COORDINATOR: _SCREENING,
    Role.CLINICIAN: _CARING,
    Role.CASE_MANAGER: _CARING,
    Role.PROGRAM_ADMIN: frozenset(Part),
}


def parts_for(roles: Iterable[Role]) -> frozenset[Part]:
    """What a caller with these roles sees: the union of its roles' views (none for a role without one)."""
    return frozenset().union(*(VIEWS.get(role, frozenset()) for role in roles))


def age_on(birth_date: date | None, day: date) -> int | None:
    """Whole years on ``day`` (a 29 February birthday counts from 1 March in other years)."""
    if birth_date is None:
        return None
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def view_of(state: ReferralState, roles: Iterable[Role], now: datetime | None = None) -> dict[str, Any]:
    """The snapshot as JSON with only the fields the roles' parts name, and ``view``: the parts shown and
    withheld, so a reader can tell "withheld" from "empty"."""
    parts = parts_for(roles)
    full = state.model_dump(mode="json")
    today = Today.at(now or datetime.now(UTC), state.program.time_zone).day
    full["referral"]["patient"]["age"] = age_on(state.referral.patient.birth_date, today)
    shown: dict[str, Any] = {}
    for part in parts:
        for path in PATHS[part]:
            _copy(full, shown, path.split("."))
    shown["view"] = {
        "parts": sorted(parts),
        "withheld": sorted(set(Part) - parts),
    }
    return shown


_PATIENT = "referral.patient."
# A read-model row's person says "mrn" for the first of the snapshot's identifiers.
_ROW_FIELDS = {"identifiers": "mrn"}


def person_view(person: RowPerson, roles: Iterable[Role], today: date) -> dict[str, Any]:
    """A list row's patient as the roles may see them: the fields of ``PATHS``' patient paths in the roles'
    parts (the same view as ``view_of``), plus ``age`` on ``today`` where ``referral.patient.age`` is shown."""
    full = person.model_dump(mode="json") | {"age": age_on(person.birth_date, today)}
    shown = (
        _ROW_FIELDS.get(path.removeprefix(_PATIENT), path.removeprefix(_PATIENT))
        for part in parts_for(roles)
        for path in PATHS[part]
        if path.startswith(_PATIENT)
    )
    return {name: full[name] for name in sorted(shown) if name in full}


def referrer_shown(roles: Iterable[Role]) -> bool:
    """Whether the roles see who referred (the order's requester)."""
    return Part.ORDER in parts_for(roles)


def _copy(source: dict[str, Any], target: dict[str, Any], path: list[str]) -> None:
    head, *rest = path
    if head not in source:
        return
    if not rest or source[head] is None:  # a whole field, or an absent object (no hospital discharge given)
        target.setdefault(head, source[head])
        return
    _copy(source[head], target.setdefault(head, {}), rest)
