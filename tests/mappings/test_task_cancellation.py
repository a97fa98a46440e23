"""What a referrer may send to ``PUT /fhir/Task/{id}``: a cancellation in BSeR's style or Gravity's, nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings.outcomes import UnusableReferral
from fhir_mappings.task_cancellation import DEFAULT_REASON, Cancellation, cancellation_from_task

TASK_ID = "hapi-test--ord-1"


def _task(**changes: Any) -> dict[str, Any]:
    return {"resourceType": "Task", "id": TASK_ID, "status": "accepted", "intent": "order", **changes}


def _refused(payload: dict[str, Any]) -> list[tuple[str, list[str]]]:
    with pytest.raises(UnusableReferral) as refused:
        cancellation_from_task(payload, TASK_ID)
    return [(issue.code, issue.expression) for issue in refused.value.issues]


def test_bser_asks_for_the_handshake() -> None:
    asked = _task(businessStatus={"coding": [{"code": "cancellation-requested"}]}, statusReason={"text": " moved "})
    assert cancellation_from_task(asked, TASK_ID) == Cancellation(requested=True, reason="moved")


def test_gravity_cancels_outright_and_a_coded_reason_reads_as_its_display() -> None:
    reason = {"coding": [{"system": "http://example.org/reasons", "code": "moved", "display": "Patient moved"}]}
    cancelled = _task(status="cancelled", statusReason=reason)
    assert cancellation_from_task(cancelled, TASK_ID) == Cancellation(requested=False, reason="Patient moved")
    assert cancellation_from_task(_task(status="cancelled"), TASK_ID).reason == DEFAULT_REASON


@pytest.mark.parametrize(
    ("payload", "refusal"),
    [
        (_task(status="completed"), ("business-rule", ["Task.status"])),
        (_task(businessStatus={"coding": [{"code": "in-treatment"}]}), ("business-rule", ["Task.status"])),
        (_task(id="another", status="cancelled"), ("invalid", ["Task.id"])),
        ({"resourceType": "ServiceRequest", "id": TASK_ID}, ("invalid", ["Task.resourceType"])),
        (_task(status="cancelled", statusReason="moved"), ("invalid", ["Task.statusReason"])),
        (_task(status="cancelled", statusReason={"text": "moved\x07"}), ("value", ["Task.statusReason.text"])),
        (_task(status="cancelled", statusReason={"text": "x" * 501}), ("value", ["Task.statusReason.text"])),
    ],
    ids=["other-status", "other-business-status", "id", "resource-type", "reason-shape", "control", "long-reason"],
)
def test_anything_else_is_refused_naming_the_element(payload: dict[str, Any], refusal: tuple[str, list[str]]) -> None:
    assert _refused(payload) == [refusal]
