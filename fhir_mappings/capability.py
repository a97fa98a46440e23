"""CapabilityStatements: our intake endpoint's own, and reading what a referring EHR accepts."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Offered:
    """What a server's CapabilityStatement offers the service's writes, worked out once per server."""

    updatable: frozenset[str]
    transactions: bool
    stated: bool  # False: no statement to go by, so every type counts as updatable (a refused write gets its note)

    def updates(self, resource_type: str) -> bool:
        return not self.stated or resource_type in self.updatable


def offered(statement: dict[str, Any]) -> Offered:
    """``Offered`` by ``statement`` (empty: the server gave none)."""
    return Offered(updatable_types(statement), takes_transactions(statement), stated=bool(statement))


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
