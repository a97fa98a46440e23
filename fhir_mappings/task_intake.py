"""Task-based intake (Gravity's pattern): the referrer posts its Task, whose ``focus`` is the
ServiceRequest in its own EHR and whose ``for`` is the patient. The Task says where to read; the referral
itself is read from the EHR, so it is judged exactly like any other."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.task import Task
from pydantic import ValidationError

from fhir_mappings.outcomes import UnusableReferral, business_rule, invalid, required, value
from fhir_mappings.resolve import local_reference

# A Task the referrer has sent (Gravity: requested; BSeR and others: ready or received). A draft is not sent.
SENT_STATUSES = frozenset({"requested", "received", "ready"})


def focus_request_id(task: dict[str, Any], source_base_url: str) -> str:
    """The id of the ServiceRequest the Task is about, in the sending EHR; ``UnusableReferral`` naming the
    element otherwise."""
    try:
        Task.model_validate(task)
    except ValidationError as error:
        where = [".".join(str(p) for p in err["loc"] if not isinstance(p, int)) for err in error.errors()]
        raise UnusableReferral(
            [invalid("not a valid FHIR Task", f"Task.{w}" if w else "Task") for w in where]
        ) from None
    issues = []
    if task.get("status") not in SENT_STATUSES:
        issues.append(value("a referral Task is requested, received or ready when it is sent", "Task.status"))
    focus = task.get("focus") or {}
    local = local_reference(focus.get("reference"), source_base_url)
    if not focus:
        issues.append(required("the Task's focus is the ServiceRequest to fulfil", "Task.focus"))
    elif local is None or not local.startswith("ServiceRequest/"):
        issues.append(
            business_rule("the focus must be a ServiceRequest in the sending EHR (Type/id on its base)", "Task.focus")
        )
    if issues:
        raise UnusableReferral(issues)
    assert local is not None
    return local.removeprefix("ServiceRequest/")


def patient_matches(task: dict[str, Any], request: dict[str, Any], source_base_url: str) -> bool:
    """Whether the Task's ``for`` names the ServiceRequest's subject (either may leave it out)."""
    named = local_reference((task.get("for") or {}).get("reference"), source_base_url)
    subject = local_reference((request.get("subject") or {}).get("reference"), source_base_url)
    return named is None or subject is None or named == subject
