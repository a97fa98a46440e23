"""Finding the resources a ServiceRequest references, inside its Bundle or its contained list."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from referral_service.domain.referral import Identifier, ResourceRef


@dataclass
class ResourceIndex:
    """Resources addressable by fullUrl, ``Type/id``, absolute URL tail, or ``#id`` when contained."""

    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Each Bundle entry's fullUrl, by the identity of its resource: where the resource lives.
    full_urls: dict[int, str] = field(default_factory=dict)
    contained: set[int] = field(default_factory=set)  # identities of contained resources (ids local to them)

    def add(self, resource: dict[str, Any], *keys: str | None) -> None:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        for key in (*keys, f"{rtype}/{rid}" if rid else None):
            if key:
                self.by_key[key] = resource
        full_url = keys[0] if keys else None
        if full_url and full_url.startswith("#"):
            self.contained.add(id(resource))
        elif full_url:
            self.full_urls[id(resource)] = full_url

    def full_url(self, resource: dict[str, Any]) -> str | None:
        return self.full_urls.get(id(resource))

    def resolve(self, reference: dict[str, Any] | None) -> dict[str, Any] | None:
        ref = (reference or {}).get("reference")
        if not isinstance(ref, str):
            return None
        if ref in self.by_key:
            return self.by_key[ref]
        tail = "/".join(ref.rstrip("/").split("/")[-2:])  # absolute URL -> Type/id
        return self.by_key.get(tail)


def to_ref(reference: dict[str, Any] | None, expected_type: str | None = None) -> ResourceRef | None:
    """A domain reference from a FHIR Reference: type and id from the URL, base URL when absolute."""
    if not reference:
        return None
    ref = reference.get("reference")
    identifier = reference.get("identifier") or {}
    ident = (
        Identifier(system=identifier["system"], value=identifier["value"])
        if identifier.get("system") and identifier.get("value")
        else None
    )
    rtype, rid, base = reference.get("type") or expected_type, None, None
    if isinstance(ref, str) and not ref.startswith(("#", "urn:")):
        parts = ref.rstrip("/").split("/")
        if len(parts) >= 2:
            rtype, rid = parts[-2], parts[-1]
            base = "/".join(parts[:-2]) or None
    if rtype is None:
        return None
    return ResourceRef(resource_type=rtype, id=rid, base_url=base, identifier=ident, display=reference.get("display"))


def reference_type(reference: dict[str, Any] | None, index: ResourceIndex) -> str | None:
    """The resource type a Reference points at, from the resolved resource, the URL or ``type``."""
    resolved = index.resolve(reference)
    if resolved is not None:
        return str(resolved.get("resourceType"))
    ref = to_ref(reference)
    return ref.resource_type if ref else None


def resolved_ref(
    reference: dict[str, Any] | None, index: ResourceIndex, expected_type: str | None = None
) -> ResourceRef | None:
    """Like ``to_ref``, but a ``urn:``/``#`` reference takes its type and identifier from the resource."""
    resolved = index.resolve(reference)
    ref = to_ref(reference, expected_type or (resolved or {}).get("resourceType"))
    if ref is None or ref.id is not None or ref.identifier is not None or resolved is None:
        return ref
    identifiers = [i for i in resolved.get("identifier") or [] if i.get("system") and i.get("value")]
    if not identifiers:
        return ref
    return ref.model_copy(
        update={"identifier": Identifier(system=identifiers[0]["system"], value=identifiers[0]["value"])}
    )


def local_reference(reference: Any, source_base_url: str | None, relative_to: str | None = None) -> str | None:
    """``Type/id`` when a literal reference names a resource in the source EHR: relative (resolved against
    ``relative_to``, the base of the Bundle entry it sits in, as FHIR resolves it), or absolute on the
    source's own base. None for contained, ``urn:`` and other servers' references."""
    if not isinstance(reference, str) or reference.startswith(("#", "urn:")):
        return None
    parts = reference.rstrip("/").split("/")
    if len(parts) < 2 or not parts[-2].isalpha():
        return None
    base = "/".join(parts[:-2]) or relative_to
    if base and (source_base_url is None or base.rstrip("/") != source_base_url.rstrip("/")):
        return None
    return f"{parts[-2]}/{parts[-1]}"


def context_base(full_url: str | None, source_base_url: str | None) -> str | None:
    """The base relative references resolve against inside a Bundle entry: its absolute fullUrl's base, else
    the sender's (a ``urn:uuid`` entry, a resource sent alone)."""
    if full_url and full_url.startswith(("http://", "https://")):
        return "/".join(full_url.rstrip("/").split("/")[:-2])
    return source_base_url
