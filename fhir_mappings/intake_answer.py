"""What the intake answers a sender: the referral's Task, with the warnings intake raised, or a
``batch-response`` Bundle of Tasks when one submission made several referrals."""

from __future__ import annotations

from typing import Any

from fhir_mappings import codes
from fhir_mappings.common import concept, validated
from fhir_mappings.outcomes import OutcomeIssue, operation_outcome

WARNINGS_ID = "intake-warnings"


def task_with_warnings(task: dict[str, Any], warnings: list[OutcomeIssue]) -> dict[str, Any]:
    """The Task with the warnings as a contained OperationOutcome its output names (so it is referenced, as
    FHIR requires of contained resources): taken, but not quite as sent, and the sender can see why."""
    if not warnings:
        return task
    outcome = {**operation_outcome(warnings), "id": WARNINGS_ID}
    output = {
        "type": concept(codes.OUTPUT_TYPE_SYSTEM, WARNINGS_ID, "Intake warnings"),
        "valueReference": {"reference": f"#{WARNINGS_ID}"},
    }
    return validated({**task, "contained": [outcome], "output": [*(task.get("output") or []), output]})


def batch_answer(tasks: list[tuple[dict[str, Any], bool]]) -> dict[str, Any]:
    """One entry per referral a submission made: its Task, and whether it was new (201) or known (200)."""
    return {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [
            {
                "resource": task,
                "response": {"status": "201 Created" if created else "200 OK", "location": f"Task/{task['id']}"},
            }
            for task, created in tasks
        ],
    }
