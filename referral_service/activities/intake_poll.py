"""Polling intake: search a referring EHR for ServiceRequests created or changed since the last poll.

The search is ``ServiceRequest?_lastUpdated=ge<since>&status=active,revoked`` with the referral's Patient,
discharge Encounter and requester ``_include``d; each match goes through the same mapping as a pushed
referral (``fhir_mappings.referral_in``), so a polled referral is checked exactly like a pushed one. Matches
that are unusable, or addressed to another performer, are logged (ids and issue codes only) and skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from fhir_mappings import searchset
from fhir_mappings.outcomes import UnusableReferral
from fhir_mappings.referral_in import acceptable_for_intake, referral_from_fhir
from referral_service.domain.patient_match import match_keys
from referral_service.domain.referral import Referral, ResourceRef, referral_key
from referral_service.ehr.client import FhirClient
from referral_service.ehr.errors import FhirError
from referral_service.logging import get_logger

PAGE_SIZE = 50
log = get_logger()


class FindReferralsInput(BaseModel):
    source_id: str
    program_org: ResourceRef
    since: datetime | None = None  # None: the first poll, which takes every open referral


class PolledReferral(BaseModel):
    key: str
    referral: Referral
    patient_match: list[str] = Field(default_factory=list)


class FoundReferrals(BaseModel):
    new: list[PolledReferral] = Field(default_factory=list)
    revoked: list[str] = Field(default_factory=list)  # referral keys the referrer withdrew
    until: datetime | None = None  # the latest lastUpdated seen: where the next poll starts


class IntakePollActivities:
    def __init__(self, clients: Mapping[str, FhirClient], match_secret: bytes) -> None:
        self._clients = clients
        self._match_secret = match_secret

    @activity.defn
    async def find_changed_referrals(self, request: FindReferralsInput) -> FoundReferrals:
        client = self._clients.get(request.source_id)
        if client is None:
            raise ApplicationError(f"no EHR configured for source {request.source_id!r}", non_retryable=True)
        params: dict[str, str | list[str]] = {
            "status": "active,revoked",
            "_include": list(searchset.INCLUDES),
            "_count": str(PAGE_SIZE),
            "_sort": "_lastUpdated",
        }
        if request.since is not None:
            params["_lastUpdated"] = f"ge{request.since.isoformat()}"
        found = FoundReferrals(until=request.since)
        try:
            async for page in client.search_pages("ServiceRequest", params):
                for bundle in searchset.referral_bundles(page):
                    self._take(bundle, request, client.source.base_url, found)
                stamps = [datetime.fromisoformat(stamp) for stamp in searchset.last_updated(page)]
                found.until = max([*stamps, *([found.until] if found.until else [])], default=None)
        except FhirError as error:
            raise ApplicationError(str(error), type=type(error).__name__, non_retryable=not error.retryable) from None
        return found

    def _take(
        self, bundle: dict[str, object], request: FindReferralsInput, source_base_url: str, found: FoundReferrals
    ) -> None:
        """The same checks as a pushed referral's, against the time it is taken in and the EHR it is in."""
        try:
            referral = referral_from_fhir(
                bundle,
                source_id=request.source_id,
                program_org=request.program_org,
                received_at=datetime.now(UTC),
                source_base_url=source_base_url,
            )
        except UnusableReferral as unusable:
            log.warning(
                "polled referral skipped",
                source_id=request.source_id,
                resource_id=_request_id(bundle),
                issue_codes=[issue.code for issue in unusable.issues],
            )
            return
        key = referral_key(referral.source_id, referral.placer_identifier)
        if acceptable_for_intake(referral.status):
            found.new.append(
                PolledReferral(
                    key=key, referral=referral, patient_match=match_keys(referral.patient, self._match_secret)
                )
            )
        elif referral.status == "revoked":
            found.revoked.append(key)


def _request_id(bundle: dict[str, object]) -> str:
    entries = bundle.get("entry")
    first = entries[0] if isinstance(entries, list) and entries else {}
    resource = first.get("resource") if isinstance(first, dict) else None
    return str(resource.get("id")) if isinstance(resource, dict) else "?"
