"""CapabilityStatements: our intake endpoint's own, and reading what a referring EHR accepts."""

from __future__ import annotations

from typing import Any

from fhir_mappings.common import validated

SOFTWARE_VERSION = "0.1.0"
DOCUMENTATION = (
    "POST a ServiceRequest, or a transaction/collection Bundle holding one with the Patient, Condition, "
    "discharge Encounter, Coverage and referrer. The answer is the closed-loop Task; sending the same "
    "referral again returns the same Task."
)
TASK_UPDATE_DOCUMENTATION = (
    "The referrer cancels: businessStatus cancellation-requested (BSeR; the program confirms with status "
    "cancelled, businessStatus cancellation-confirmed) or status cancelled (Gravity). Nothing else may change."
)


def updatable_types(statement: dict[str, Any]) -> frozenset[str]:
    """Resource types a server's CapabilityStatement lets us update. Every write is a conditional update
    (``PUT Type?identifier=...``), so a type offering only ``create`` (or read/search) is not writable."""
    return frozenset(
        str(resource["type"])
        for rest in statement.get("rest") or []
        if rest.get("mode") == "server"
        for resource in rest.get("resource") or []
        if any(i.get("code") == "update" for i in resource.get("interaction") or [])
    )


def takes_transactions(statement: dict[str, Any]) -> bool:
    """Whether a server's CapabilityStatement offers the ``transaction`` system interaction."""
    return any(
        interaction.get("code") == "transaction"
        for rest in statement.get("rest") or []
        if rest.get("mode") == "server"
        for interaction in rest.get("interaction") or []
    )


def intake_capability_statement(*, base_url: str) -> dict[str, Any]:
    return validated(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2026-11-24",
            "kind": "instance",
            "software": {"name": "IOP referral service", "version": SOFTWARE_VERSION},
            "implementation": {"description": "IOP step-down referral intake", "url": base_url},
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json"],
            "rest": [
                {
                    "mode": "server",
                    "documentation": DOCUMENTATION,
                    "resource": [
                        {"type": "ServiceRequest", "interaction": [{"code": "create"}]},
                        {
                            "type": "Task",
                            "interaction": [
                                {"code": "read"},
                                {"code": "update", "documentation": TASK_UPDATE_DOCUMENTATION},
                            ],
                        },
                    ],
                    "interaction": [{"code": "transaction"}],
                }
            ],
        }
    )
