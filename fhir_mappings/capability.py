"""The intake endpoint's own CapabilityStatement: what a referring system may send us."""

from __future__ import annotations

from typing import Any

from fhir_mappings.common import validated

SOFTWARE_VERSION = "0.1.0"
DOCUMENTATION = (
    "POST a ServiceRequest, or a transaction/collection Bundle holding one with the Patient, Condition, "
    "discharge Encounter, Coverage and referrer. The answer is the closed-loop Task; sending the same "
    "referral again returns the same Task."
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
                        {"type": "Task", "interaction": [{"code": "read"}]},
                    ],
                    "interaction": [{"code": "transaction"}],
                }
            ],
        }
    )
