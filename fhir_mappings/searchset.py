"""Referrals found by searching an EHR: a searchset Bundle (ServiceRequests plus ``_include``d resources)
split into one collection Bundle per ServiceRequest, the shape ``referral_in`` already reads."""

from __future__ import annotations

from typing import Any

# What a polled ServiceRequest's referral needs besides itself; each is a ServiceRequest search parameter.
INCLUDES = ("ServiceRequest:subject", "ServiceRequest:encounter", "ServiceRequest:requester")
_REFERENCING_ELEMENTS = ("subject", "encounter", "requester", "supportingInfo", "reasonReference", "insurance")


def referral_bundles(searchset: dict[str, Any]) -> list[dict[str, Any]]:
    """A collection Bundle per matched ServiceRequest, holding it and the included resources it references."""
    included = {
        _type_and_id(f"{e['resource'].get('resourceType')}/{e['resource'].get('id')}"): e
        for e in _entries(searchset)
        if _mode(e) == "include"
    }
    bundles = []
    for entry in _entries(searchset):
        if _mode(entry) == "include" or entry["resource"].get("resourceType") != "ServiceRequest":
            continue
        wanted = {_type_and_id(ref) for ref in _references(entry["resource"])}
        found = [_entry(e) for key, e in included.items() if key in wanted]
        bundles.append({"resourceType": "Bundle", "type": "collection", "entry": [_entry(entry), *found]})
    return bundles


def last_updated(searchset: dict[str, Any]) -> list[str]:
    """``meta.lastUpdated`` of every matched resource (the poll's next watermark is the latest)."""
    stamps = [
        (e["resource"].get("meta") or {}).get("lastUpdated") for e in _entries(searchset) if _mode(e) != "include"
    ]
    return [stamp for stamp in stamps if isinstance(stamp, str)]


def _entries(searchset: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in searchset.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"), dict)]


def _mode(entry: dict[str, Any]) -> str | None:
    mode = (entry.get("search") or {}).get("mode")
    return mode if isinstance(mode, str) else None


def _references(request: dict[str, Any]) -> list[str]:
    refs = []
    for element in _REFERENCING_ELEMENTS:
        value = request.get(element)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and isinstance(item.get("reference"), str):
                refs.append(item["reference"])
            if isinstance(item, dict) and isinstance((item.get("coverage") or {}).get("reference"), str):
                refs.append(item["coverage"]["reference"])
    return refs


def _type_and_id(reference: str) -> str:
    return "/".join(reference.split("/")[-2:])  # relative or absolute: Type/id


def _entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: entry[key] for key in ("fullUrl", "resource") if key in entry}
