"""A DocumentReference note standing in for a CarePlan or Encounter the referring EHR will not accept.

Epic and Oracle Health expose CarePlan (and Epic Encounter) read-only; the plan or the session is then sent
as a plain-text clinical note with the same content, so nothing is dropped silently (DOMAIN.md).
"""

from __future__ import annotations

import base64
from typing import Any

from fhir_mappings import codes
from fhir_mappings.common import business_identifier, concept, reference, validated
from referral_service.domain.referral import Referral

# Which note each refused resource becomes: LOINC document type, and the note's title.
NOTE_TYPE = {
    "CarePlan": ("18776-5", "Plan of care note"),
    "Encounter": ("11506-3", "Progress note"),
}


def note_instead(referral: Referral, resource: dict[str, Any], *, key: str) -> dict[str, Any]:
    """``resource`` (a mapped CarePlan or Encounter) as a text note, under the same business identifier key."""
    code, display = NOTE_TYPE[resource["resourceType"]]
    text = summary(resource)
    return validated(
        {
            "resourceType": "DocumentReference",
            "identifier": business_identifier(key),
            "status": "current",
            "type": concept(codes.LOINC, code, display),
            "subject": reference(referral.patient.ref),
            "description": text.splitlines()[0],
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain",
                        "data": base64.b64encode(text.encode()).decode(),
                        "title": display,
                    }
                }
            ],
            "context": {"related": [reference(referral.service_request)]},
        }
    )


def summary(resource: dict[str, Any]) -> str:
    """What the CarePlan or Encounter says, for a person reading the note."""
    if resource["resourceType"] == "CarePlan":
        return _plan_summary(resource)
    return _encounter_summary(resource)


def _plan_summary(plan: dict[str, Any]) -> str:
    period = plan["period"]
    lines = [
        f"{plan['title']} ({plan['status']})",
        f"Period: {period['start']} to {period.get('end', 'open')}",
    ]
    if "contributor" in plan:
        lines.append(f"Care team: {', '.join(c['display'] for c in plan['contributor'])}")
    lines.append("Activities:")
    for activity in plan["activity"]:
        detail = activity["detail"]
        if "code" in detail:
            what = f"{detail['code']['text']} ({detail['code']['coding'][0]['display']})"
            repeat = detail["scheduledTiming"]["repeat"]
            when = (
                f"{', '.join(repeat['dayOfWeek'])} at {', '.join(repeat['timeOfDay'])}"
                f" for {repeat['duration']:g} {repeat['durationUnit']}"
            )
        else:
            what, when = detail["description"], f"on {detail['scheduledPeriod']['start']}"
        lines.append(f"- {what}: {when}, {detail['status']}")
    return "\n".join(lines)


def _encounter_summary(encounter: dict[str, Any]) -> str:
    kind = encounter["type"][0]
    period = encounter["period"]
    return "\n".join(
        [
            f"IOP session: {kind['text']} ({kind['coding'][0]['display']}), {encounter['status']}",
            f"From {period['start']} to {period['end']}",
            f"Setting: {encounter['class']['display']}",
        ]
    )
