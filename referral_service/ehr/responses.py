"""Reading successful FHIR responses: JSON bodies, ``ETag``/``Location`` versions, write results."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import httpx

from referral_service.ehr.errors import PermanentError

RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
RESOURCE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_LOCATION = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]{1,63})/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/(?P<version>[A-Za-z0-9\-.]{1,64}))?/?$"
)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of a create or update.

    ``created`` is True for 201 (a new resource), False for 200 (updated, or an existing match of a
    conditional create). ``version`` comes from ``ETag``, else the ``Location`` ``_history/n``, else
    ``meta.versionId``. ``resource`` is the stored resource when the server returned or let us read it.
    """

    created: bool
    resource_type: str
    id: str
    version: str | None
    resource: dict[str, Any] | None


class Location(NamedTuple):
    """``[base]/Type/id[/_history/vid]`` from a ``Location`` or ``Content-Location`` header."""

    resource_type: str
    id: str
    version: str | None


def parse_location(value: str | None) -> Location | None:
    """The type, id and version named by a ``Location`` header, or ``None`` if it names none."""
    if not value:
        return None
    match = _LOCATION.search(httpx.URL(value.strip()).path)
    if match is None:
        return None
    return Location(match["type"], match["id"], match["version"])


def etag_version(value: str | None) -> str | None:
    """``W/"3"`` (or ``"3"``) to ``"3"``; ``None`` when absent or empty."""
    if not value:
        return None
    value = value.strip()
    value = value.removeprefix("W/").strip('"')
    return value or None


def meta_version(resource: dict[str, Any] | None) -> str | None:
    meta = resource.get("meta") if resource else None
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return str(version) if version else None


def json_body(response: httpx.Response) -> dict[str, Any] | None:
    """The response's JSON object, ``None`` for an empty body; a non-JSON body is a ``PermanentError``."""
    if not response.content.strip():
        return None
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    try:
        body = json.loads(response.content) if "json" in content_type else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise PermanentError(
            f"non-FHIR response body ({content_type or 'no content type'})", status=response.status_code
        )
    return body


def expect_resource(response: httpx.Response, resource_type: str) -> dict[str, Any]:
    """The response body, which must be a ``resource_type`` resource."""
    body = json_body(response)
    if body is None or body.get("resourceType") != resource_type:
        raise PermanentError(f"expected a {resource_type} in the response", status=response.status_code)
    return body


def check_type(resource_type: str) -> str:
    if not RESOURCE_TYPE.fullmatch(resource_type):
        raise ValueError(f"not a FHIR resource type: {resource_type!r}")
    return resource_type


def check_id(resource_id: str) -> str:
    if not RESOURCE_ID.fullmatch(resource_id):
        raise ValueError(f"not a FHIR resource id: {resource_id!r}")
    return resource_id
