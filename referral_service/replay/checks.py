"""Expectations checked by searching the EHR for what the service wrote under its business identifiers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from referral_service.domain.lifecycle import Phase
from referral_service.ehr.client import FhirClient
from referral_service.replay.scenario import Checkpoint, ResourceCheck


@dataclass(frozen=True)
class Written:
    """One kind of resource the workflow writes, and the identifier suffixes it uses under the referral key."""

    name: str  # as in the scenario file
    resource_type: str
    suffixes: Callable[[Sequence[str]], list[str]]  # from the scenario's session ids
    single: bool = True


WRITTEN = (
    Written("task", "Task", lambda _: ["task"]),
    Written("care_team", "CareTeam", lambda _: ["careteam"]),
    Written("care_plan", "CarePlan", lambda _: ["careplan"]),
    Written("aftercare_plan", "CarePlan", lambda _: ["aftercare-plan"]),
    Written("encounters", "Encounter", lambda sessions: [f"encounter/{s}" for s in sessions], single=False),
    Written("care_plan_note", "DocumentReference", lambda _: ["careplan"]),
    Written("aftercare_plan_note", "DocumentReference", lambda _: ["aftercare-plan"]),
)
_PER_SEARCH = 25
_FIELDS: dict[str, Callable[[dict[str, Any]], object]] = {
    "status": lambda r: r.get("status"),
    "business_status": lambda r: ((r.get("businessStatus") or {}).get("coding") or [{}])[0].get("code"),
    "status_reason": lambda r: (r.get("statusReason") or {}).get("text"),
}


def kinds_checked(checkpoint: Checkpoint) -> list[str]:
    return [written.name for written in WRITTEN if getattr(checkpoint, written.name) is not None]


async def find_written(
    client: FhirClient, key: str, sessions: Sequence[str], kinds: Sequence[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """What the workflow wrote for referral ``key``, for each of ``kinds``: identifiers OR-ed with commas
    (session ids never hold one), a few dozen per search so the URL stays short. ``None``: every kind."""
    found: dict[str, list[dict[str, Any]]] = {}
    for written in (w for w in WRITTEN if kinds is None or w.name in kinds):
        values = [f"{RESOURCE_KEY_SYSTEM}|{key}/{suffix}" for suffix in written.suffixes(sessions)]
        found[written.name] = []
        for start in range(0, len(values), _PER_SEARCH):
            criteria = {"identifier": ",".join(values[start : start + _PER_SEARCH])}
            found[written.name] += await client.search(written.resource_type, criteria)
    return found


def unmet(checkpoint: Checkpoint, phase: Phase, found: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Each unmet expectation, spelled out as expected versus found."""
    problems = []
    if checkpoint.phase is not None and checkpoint.phase != phase:
        problems.append(f"phase: expected {checkpoint.phase}, found {phase}")
    for written in WRITTEN:
        check: ResourceCheck | None = getattr(checkpoint, written.name)
        if check is not None:
            problems += _resource_problems(written, check, found.get(written.name, []))
    return problems


def _resource_problems(written: Written, check: ResourceCheck, resources: list[dict[str, Any]]) -> list[str]:
    label = f"{written.name} ({written.resource_type})"
    if check.count is not None and len(resources) != check.count:
        return [f"{label}: expected {check.count}, found {len(resources)}"]
    if check.count is None and written.single and len(resources) != 1:
        return [f"{label}: expected 1, found {len(resources)}"]
    if check.count is None and not resources:
        return [f"{label}: expected at least 1, found 0"]
    problems = []
    for field, read in _FIELDS.items():
        expected = getattr(check, field)
        if expected is None:
            continue
        for resource in resources:
            value = read(resource)
            if value != expected:
                problems.append(f"{label}.{field}: expected {expected}, found {value} ({_name(resource)})")
    return problems


def _name(resource: dict[str, Any]) -> str:
    version = (resource.get("meta") or {}).get("versionId")
    return f"{resource['resourceType']}/{resource.get('id')}" + (f" v{version}" if version else "")
