"""A submission's structure: a ServiceRequest (alone, with contained resources) or a Bundle holding one or
more, checked against FHIR R4 (fhir.resources R4B) and indexed so references can be resolved inside it.

Every problem is an OperationOutcome issue naming the element at fault (never its value)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from fhir_mappings.outcomes import OutcomeIssue, UnusableReferral, invalid, required, value
from fhir_mappings.resolve import ResourceIndex

BUNDLE_TYPES = frozenset({"transaction", "collection", "batch", "message", "document"})
# FHIR strings may hold tab, CR and LF but no other control character; lone surrogates are not Unicode.
_UNREADABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
MAX_DEPTH = 64  # real referral Bundles nest about 10 levels
ALL_REQUESTS = "Bundle.entry.resource.ofType(ServiceRequest)"


@dataclass(frozen=True)
class RequestEntry:
    """One ServiceRequest of a submission, with where it sits (its fullUrl, when in a Bundle)."""

    resource: dict[str, Any]
    full_url: str | None = None


@dataclass(frozen=True)
class Submission:
    """A structurally valid submission: its ServiceRequest(s) and every resource it carries, indexed."""

    requests: list[RequestEntry]
    index: ResourceIndex


def read_submission(payload: dict[str, Any]) -> Submission:
    """Structural checks of a ServiceRequest or a Bundle; raise ``UnusableReferral`` naming each element."""
    if _deeper_than(payload, MAX_DEPTH):  # validation recurses per level: refuse before it runs out of stack
        raise UnusableReferral([invalid(f"the resource is nested more than {MAX_DEPTH} levels deep", "")])
    issues: list[OutcomeIssue] = []
    requests, index = _locate(payload, issues)
    if payload.get("resourceType") == "ServiceRequest":  # a Bundle's entries were schema-checked in _locate
        issues += _schema_issues(payload, "ServiceRequest")
        contained_resources = payload.get("contained") or []
        for position, contained in enumerate(contained_resources if isinstance(contained_resources, list) else []):
            where = f"ServiceRequest.contained[{position}]"
            issues += (
                _schema_issues(contained, where) if isinstance(contained, dict) else [invalid("not a resource", where)]
            )
    if issues or not requests:
        raise UnusableReferral(issues)
    return Submission(requests, index)


def _locate(payload: dict[str, Any], issues: list[OutcomeIssue]) -> tuple[list[RequestEntry], ResourceIndex]:
    index = ResourceIndex()
    rtype = payload.get("resourceType")
    if rtype == "ServiceRequest":
        if not isinstance(payload.get("contained") or [], list):
            issues.append(invalid("contained must be a list of resources", "ServiceRequest.contained"))
            return [RequestEntry(payload)], index
        for contained in payload.get("contained") or []:
            if isinstance(contained, dict) and contained.get("id"):
                index.add(contained, f"#{contained['id']}")
        return [RequestEntry(payload)], index
    if rtype != "Bundle":
        issues.append(invalid("a referral is a ServiceRequest or a Bundle holding one", f"{rtype or 'Resource'}"))
        return [], index
    if not isinstance(payload.get("type"), str) or payload["type"] not in BUNDLE_TYPES:
        issues.append(value("the Bundle type must be transaction or collection", "Bundle.type"))
    entries = payload.get("entry") or []
    if not isinstance(entries, list):
        issues.append(invalid("Bundle.entry must be a list of entries", "Bundle.entry"))
        return [], index
    requests = []
    for position, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            issues.append(required("a Bundle entry has no resource", f"Bundle.entry[{position}].resource"))
            continue
        issues += _schema_issues(resource, f"Bundle.entry[{position}].resource")
        full_url = entry.get("fullUrl")
        if full_url is not None and not isinstance(full_url, str):
            issues.append(invalid("fullUrl must be a URI", f"Bundle.entry[{position}].fullUrl"))
            full_url = None
        index.add(resource, full_url)
        for contained in resource.get("contained") or [] if isinstance(resource.get("contained"), list) else []:
            if isinstance(contained, dict) and contained.get("id") and resource.get("resourceType") == "ServiceRequest":
                index.add(contained, f"#{contained['id']}")
        if resource.get("resourceType") == "ServiceRequest":
            requests.append(RequestEntry(resource, full_url))
    if not requests:
        issues.append(required("the Bundle holds no ServiceRequest", ALL_REQUESTS))
    return requests, index


def _schema_issues(resource: dict[str, Any], path: str) -> list[OutcomeIssue]:
    """Structural validation with fhir.resources; each error names the element (never its value)."""
    rtype = resource.get("resourceType")
    try:
        model = get_fhir_model_class(str(rtype)) if isinstance(rtype, str) and rtype.isalpha() else None
    except (KeyError, ValueError, AttributeError):  # fhir.resources' ways of saying "no such resource"
        model = None
    if model is None:  # the value itself is never echoed: a sender may have put anything there
        return [invalid("missing or unknown resourceType", f"{path}.resourceType")]
    body = {k: v for k, v in resource.items() if k != "contained"} if rtype == "ServiceRequest" else resource
    prefix = "ServiceRequest" if rtype == "ServiceRequest" else path
    unreadable = _unreadable_strings(body, prefix)
    if unreadable:
        return [invalid("control characters or broken Unicode in a string", where) for where in unreadable]
    try:
        model.model_validate(body)
    except ValidationError as error:
        return [invalid(_describe(err["type"]), _fhirpath(prefix, err["loc"])) for err in error.errors()]
    return []


def _describe(error_type: str) -> str:
    return {"extra_forbidden": "unknown element", "missing": "required element missing"}.get(
        error_type, "invalid value for this element's FHIR type"
    )


def _fhirpath(prefix: str, loc: tuple[Any, ...]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.removesuffix(".__root__")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests more than ``limit`` levels (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return False


def _unreadable_strings(value: Any, path: str) -> list[str]:
    """Paths of strings FHIR forbids: control characters other than tab, CR and LF, or lone surrogates."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            stack.extend((child, f"{where}.{key}") for key, child in node.items())
        elif isinstance(node, list):
            stack.extend((child, f"{where}[{position}]") for position, child in enumerate(node))
        elif isinstance(node, str) and _UNREADABLE.search(node):
            found.append(where)
    return sorted(found)
