"""Asking the referring EHR what a submission names but does not carry (``fhir_mappings.ehr_lookups``).

Directory resources (organisations, roles, services, practitioners) change rarely and every referral from a
hospital names the same few, so what the EHR answered about them (a read, or the ids under an identifier such as
a practitioner's NPI) is kept for a while; patients and orders are always asked afresh.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fhir_mappings.ehr_lookups import FoundInEhr, Lookups
from referral_service.ehr.client import FhirClient
from referral_service.ehr.errors import FhirError, NotFoundError, TransientError
from referral_service.logging import get_logger

DIRECTORY_TYPES = frozenset({"Organization", "PractitionerRole", "HealthcareService", "Location", "Practitioner"})
DIRECTORY_SECONDS = 600.0
MORE_MATCHES = "(more)"  # stands for the matches past the first page: enough to say "several"
log = get_logger()


class EhrAnswers:
    """Reads and identifier searches against one EHR, directory answers kept per source for ten minutes."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # (source, reference or "type|token") -> (kept until, the answer)
        self._directory: dict[tuple[str, str], tuple[float, FoundInEhr]] = {}

    async def ask(self, ehr: FhirClient, lookups: Lookups) -> FoundInEhr:
        """What the EHR holds for each read and search. A resource the EHR will not show (403, an id it
        cannot take) stays unknown; a transient failure raises ``TransientError`` for the caller to retry."""
        # All at once (within the source's call limits): each is a round trip on the hospital's intake POST.
        answers = await asyncio.gather(
            *(self._read(ehr, reference) for reference in sorted(lookups.reads)),
            *(self._search(ehr, resource_type, token) for resource_type, token in sorted(lookups.searches)),
        )
        found = FoundInEhr()
        for answer in answers:
            found = found.merged(answer)
        return found

    async def _read(self, ehr: FhirClient, reference: str) -> FoundInEhr:
        resource_type, resource_id = reference.split("/", 1)
        if (kept := self._kept(ehr, reference)) is not None:
            return kept
        try:
            answer = FoundInEhr(held={reference: await ehr.read(resource_type, resource_id)})
        except (NotFoundError, ValueError):  # ValueError: not a FHIR id, so no EHR can hold it under that id
            answer = FoundInEhr(held={reference: None})
        except TransientError:
            raise
        except FhirError as error:  # forbidden, or otherwise unanswered: unknown, not absent
            log.info(
                "ehr lookup unanswered",
                source_id=ehr.source.id,
                resource_type=resource_type,
                error=type(error).__name__,
            )
            return FoundInEhr()
        self._keep(ehr, resource_type, reference, answer)
        return answer

    async def _search(self, ehr: FhirClient, resource_type: str, token: str) -> FoundInEhr:
        asked = f"{resource_type}|{token}"
        if (kept := self._kept(ehr, asked)) is not None:
            return kept
        answer = await _search(ehr, resource_type, token)
        if answer.matches:  # an unanswered search stays unknown and is asked again next time
            self._keep(ehr, resource_type, asked, answer)
        return answer

    def _kept(self, ehr: FhirClient, asked: str) -> FoundInEhr | None:
        kept = self._directory.get((ehr.source.id, asked))
        return kept[1] if kept is not None and kept[0] > self._clock() else None

    def _keep(self, ehr: FhirClient, resource_type: str, asked: str, answer: FoundInEhr) -> None:
        if resource_type in DIRECTORY_TYPES:
            self._directory[(ehr.source.id, asked)] = (self._clock() + DIRECTORY_SECONDS, answer)


async def _search(ehr: FhirClient, resource_type: str, token: str) -> FoundInEhr:
    """Ids under an identifier, from the first page only: two or more already means "not one"."""
    try:
        page = await anext(ehr.search_pages(resource_type, {"identifier": token, "_count": "2"}))
    except TransientError:
        raise
    except (FhirError, ValueError):
        return FoundInEhr()
    ids = tuple(
        str(entry["resource"]["id"])
        for entry in page.get("entry") or []
        if isinstance(entry.get("resource"), dict)
        and entry["resource"].get("resourceType") == resource_type
        and (entry.get("search") or {}).get("mode", "match") == "match"
    )
    more = any(link.get("relation") == "next" for link in page.get("link") or [])
    return FoundInEhr(matches={(resource_type, token): ids + ((MORE_MATCHES,) if more else ())})
