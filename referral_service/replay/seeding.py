"""A scenario's referral: moved to the replay's clock, given its own order number, and seeded in the EHR.

Seeding never duplicates on a rerun: a ServiceRequest already in the EHR (same order number) is left as it
is; otherwise a transaction Bundle is sent as written (conditional creates on identifiers), a Bundle whose
resources carry ids is stored under those ids (PUT), and a lone ServiceRequest with contained resources is a
conditional create on its order number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from fhir_mappings.outcomes import UnusableReferral
from fhir_mappings.referral_in import referral_from_fhir
from referral_service.domain.program import Program
from referral_service.domain.program_day import Today
from referral_service.domain.referral import Referral
from referral_service.ehr.client import FhirClient
from referral_service.replay.scenario import ReferralSpec, ScenarioError

_DATE = re.compile(r"^(\d{4}-\d\d-\d\d)")
_NOT_MOVED = frozenset({"birthDate"})  # the story moves in time; the patient's age stays


@dataclass(frozen=True)
class PreparedReferral:
    payload: dict[str, Any]  # what the EHR holds and the service receives
    referral: Referral


def prepare(spec: ReferralSpec, program: Program, *, day0: datetime, order_suffix: str) -> PreparedReferral:
    """The referral file with its dates moved so the hospital discharge falls on the chosen replay day, and
    ``order_suffix`` appended to its order number (the placer identifier, hence the referral key)."""
    payload: dict[str, Any] = json.loads(Path(spec.file).read_text())
    original = _parse(payload, spec, program, received_at=None)
    discharge = original.discharge.discharge_date if original.discharge else None
    first_day = Today.at(day0, program.time_zone).day  # the program's day: sessions are dated in its days
    shift = first_day + timedelta(days=spec.hospital_discharge_day) - discharge if discharge else timedelta(0)
    order = original.placer_identifier.value
    moved = _rewrite(payload, shift, order, f"{order}-{order_suffix}")
    return PreparedReferral(moved, _parse(moved, spec, program, received_at=day0))


async def seed(client: FhirClient, prepared: PreparedReferral) -> str:
    """Put the referral's resources in the EHR (see the module docstring); returns what was done."""
    placer = prepared.referral.placer_identifier
    criteria = {"identifier": placer.token}
    if await client.search("ServiceRequest", criteria):
        return "already in the EHR"
    payload = prepared.payload
    if payload["resourceType"] == "ServiceRequest":
        await client.create_if_none_exist(payload, criteria)
        return "ServiceRequest created (contained resources)"
    if payload.get("type") != "transaction":
        payload = _stored_under_ids(payload, client.source.base_url)
    await client.transaction(payload)
    return f"{len(payload.get('entry') or [])} resources seeded"


def _parse(payload: dict[str, Any], spec: ReferralSpec, program: Program, *, received_at: datetime | None) -> Referral:
    try:
        return referral_from_fhir(
            payload, source_id=spec.source, program_org=program.organization, received_at=received_at
        )
    except UnusableReferral as error:
        raise ScenarioError(f"{spec.file}: not a usable referral: {error}") from None


def _rewrite(node: Any, shift: timedelta, old: str, new: str, key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _rewrite(v, shift, old, new, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite(v, shift, old, new, key) for v in node]
    if not isinstance(node, str):
        return node
    if node == old or (key == "ifNoneExist" and node.endswith(f"|{old}")):
        return node[: len(node) - len(old)] + new
    match = _DATE.match(node)
    if match and shift and key not in _NOT_MOVED:
        moved = date.fromisoformat(match.group(1)) + shift
        return moved.isoformat() + node[match.end() :]
    return node


def _stored_under_ids(bundle: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A collection Bundle as a transaction that keeps the resources' ids, so its references resolve."""
    entries = []
    for entry in bundle.get("entry") or []:
        resource = entry["resource"]
        if resource.get("id"):
            url = f"{resource['resourceType']}/{resource['id']}"
            entries.append(
                {"fullUrl": f"{base_url}/{url}", "resource": resource, "request": {"method": "PUT", "url": url}}
            )
        else:
            entries.append({"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
