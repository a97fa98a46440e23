"""What an incoming referral names but does not carry, and what the referring EHR said about it.

Judging a referral needs a few facts only the sending EHR holds: whether the patient a literal reference
names exists there, what a performer reference is (an Organization with the program's NPI, a
PractitionerRole), which patient an identifier belongs to. The mapping lists them (``Lookups``), the
intake reads them (I/O, outside this package) and hands the answers back (``FoundInEhr``), and the
mapping judges: pure functions on both sides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from referral_service.domain.referral import Identifier

_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")


def absolute_uri(text: str) -> bool:
    """FHIR's ``uri`` for an identifier system must be absolute (``http://...``, ``urn:oid:...``)."""
    return bool(_ABSOLUTE_URI.match(text))


def identifiers_of(resource: dict[str, Any]) -> list[Identifier]:
    """A resource's identifiers that have a value; a system that is not an absolute URI is left off (an EHR
    refuses it on write, and it scopes nothing), the value kept."""
    found = []
    for item in resource.get("identifier") or []:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str) or not item["value"].strip():
            continue
        system = item.get("system")
        found.append(
            Identifier(system=system if isinstance(system, str) and absolute_uri(system) else None, value=item["value"])
        )
    return found


@dataclass(frozen=True)
class Lookups:
    """Reads (``Type/id`` in the source EHR) and identifier searches (type, token) a referral needs."""

    reads: frozenset[str] = frozenset()
    searches: frozenset[tuple[str, str]] = frozenset()

    def __or__(self, other: Lookups) -> Lookups:
        return Lookups(self.reads | other.reads, self.searches | other.searches)

    def without(self, found: FoundInEhr) -> Lookups:
        """What ``found`` does not answer yet."""
        return Lookups(
            frozenset(r for r in self.reads if r not in found.held),
            frozenset(s for s in self.searches if s not in found.matches),
        )

    def __bool__(self) -> bool:
        return bool(self.reads or self.searches)


@dataclass(frozen=True)
class FoundInEhr:
    """The source EHR's answers: each read's resource (None: it holds none with that id), each search's ids.

    A fact nobody looked up (a poll that reads nothing, a unit test) is unknown, not absent."""

    held: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    matches: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def read(self, reference: str) -> dict[str, Any] | None:
        return self.held.get(reference)

    def absent(self, reference: str) -> bool:
        """The EHR was asked and holds no such resource."""
        return reference in self.held and self.held[reference] is None

    def ids_for(self, resource_type: str, identifiers: list[Identifier]) -> set[str] | None:
        """Ids of ``resource_type`` the EHR holds under any of ``identifiers``; None when none was searched."""
        searched = [(resource_type, i.token) for i in identifiers if (resource_type, i.token) in self.matches]
        if not searched:
            return None
        return {found for key in searched for found in self.matches[key]}

    def merged(self, other: FoundInEhr) -> FoundInEhr:
        return FoundInEhr({**self.held, **other.held}, {**self.matches, **other.matches})


def held_in(bundle: dict[str, Any], source_base_url: str) -> FoundInEhr:
    """A Bundle the EHR itself returned (a search, a read-back) holds resources the EHR holds: no need to
    ask again for what is in it."""
    held: dict[str, dict[str, Any] | None] = {}
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("id") and resource.get("resourceType"):
            held[f"{resource['resourceType']}/{resource['id']}"] = resource
    return FoundInEhr(held=held) if source_base_url else FoundInEhr()
