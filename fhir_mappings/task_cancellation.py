"""A referrer's cancellation, sent as its own copy of the closed-loop Task (``PUT /fhir/Task/{id}``).

Both styles DOMAIN.md names: BSeR's two-step handshake (the initiator sets ``businessStatus`` to
``cancellation-requested``; the program confirms with ``cancelled`` / ``cancellation-confirmed``), and
Gravity's direct one (the referrer sets ``status`` to ``cancelled``). Nothing else a referrer may change.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from fhir_mappings.outcomes import UnusableReferral, business_rule, invalid, value

REQUESTED = "cancellation-requested"
DEFAULT_REASON = "cancelled by referrer"
_MAX_REASON = 500
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class Cancellation(BaseModel):
    requested: bool  # BSeR: asked, for the program to confirm; False: Gravity, cancelled outright
    reason: str


def cancellation_from_task(payload: dict[str, Any], task_id: str) -> Cancellation:
    """The cancellation ``payload`` asks for, or ``UnusableReferral`` naming the element at fault."""
    if payload.get("resourceType") != "Task":
        raise UnusableReferral([invalid("expected a Task here", "Task.resourceType")])
    if payload.get("id") != task_id:
        raise UnusableReferral([invalid(f"the Task's id must be {task_id}, as in the URL", "Task.id")])
    if REQUESTED in _business_status_codes(payload):
        requested = True
    elif payload.get("status") == "cancelled":
        requested = False
    else:
        raise UnusableReferral(
            [
                business_rule(
                    "a referrer may only cancel: set status to cancelled (Gravity), or businessStatus to "
                    f"{REQUESTED} (BSeR)",
                    "Task.status",
                )
            ]
        )
    return Cancellation(requested=requested, reason=_reason(payload.get("statusReason")))


def _business_status_codes(payload: dict[str, Any]) -> set[str]:
    concept = payload.get("businessStatus")
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return {c["code"] for c in codings or [] if isinstance(c, dict) and isinstance(c.get("code"), str)}


def _reason(concept: Any) -> str:
    """``statusReason`` as the text shown back on our Task: its text, else its first coding's display."""
    if concept is None:
        return DEFAULT_REASON
    if not isinstance(concept, dict):
        raise UnusableReferral([invalid("statusReason must be a CodeableConcept", "Task.statusReason")])
    codings = [c for c in concept.get("coding") or [] if isinstance(c, dict)]
    text = concept.get("text") or next((c.get("display") or c.get("code") for c in codings), None)
    if text is None:
        return DEFAULT_REASON
    if not isinstance(text, str) or not text.strip() or _CONTROL.search(text) or len(text) > _MAX_REASON:
        raise UnusableReferral(
            [value(f"the reason must be plain text of at most {_MAX_REASON} characters", "Task.statusReason.text")]
        )
    return text.strip()
