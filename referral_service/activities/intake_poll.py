"""Polling intake: search a referring EHR for ServiceRequests created or changed since the last poll.

The search is ``ServiceRequest?_lastUpdated=ge<since>&status=active,revoked`` with the referral's Patient,
discharge Encounter and requester ``_include``d; each match goes through the intake every route uses
(``referral_service.intake``, handed in by the worker: it starts workflows, which this layer cannot name),
so a polled referral is checked, keyed and started exactly like a pushed one. Only ServiceRequests naming
the program as performer are taken; the rest are counted as skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError

from fhir_mappings import searchset
from referral_service.activities.ehr_failures import activity_error
from referral_service.domain.referral import Referral
from referral_service.ehr.client import FhirClient
from referral_service.ehr.errors import FhirError

PAGE_SIZE = 50
PolledOutcome = Literal["started", "known", "cancelled", "skipped"]
TakeInPolled = Callable[[dict[str, Any], FhirClient, datetime], Awaitable[PolledOutcome]]


class FindReferralsInput(BaseModel):
    source_id: str
    since: datetime | None = None  # None: the first poll, which takes every open referral


class PolledReferral(BaseModel):
    """A referral the poll workflow started itself (histories recorded before intake ran in the activity)."""

    key: str
    referral: Referral
    patient_match: list[str] = Field(default_factory=list)


class FoundReferrals(BaseModel):
    # Always empty now: the activity takes referrals in itself. Recorded runs carried them to the workflow.
    new: list[PolledReferral] = Field(default_factory=list)
    revoked: list[str] = Field(default_factory=list)
    until: datetime | None = None  # the latest lastUpdated seen: where the next poll starts
    started: int = 0
    cancelled: int = 0
    skipped: int = 0


class IntakePollActivities:
    def __init__(self, clients: Mapping[str, FhirClient], take_in: TakeInPolled) -> None:
        self._clients = clients
        self._take_in = take_in

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
                    outcome = await self._take_in(bundle, client, datetime.now(UTC))
                    found.started += outcome == "started"
                    found.cancelled += outcome == "cancelled"
                    found.skipped += outcome == "skipped"
                stamps = [datetime.fromisoformat(stamp) for stamp in searchset.last_updated(page)]
                found.until = max([*stamps, *([found.until] if found.until else [])], default=None)
        except FhirError as error:
            raise activity_error(error, non_retryable=not error.retryable) from None
        return found
