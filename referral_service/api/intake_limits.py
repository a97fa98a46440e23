"""Back-pressure on FHIR intake: a token bucket per referring source, so one EHR's burst (a re-sent backlog,
a loop) cannot crowd out the others, on every intake route (push, Bundle, Task, subscription deliveries). The
buckets are in the service database (``store.intake_rates``), shared by every API process. Body sizes are the
gate's (``api.gate``)."""

from __future__ import annotations

from fastapi.responses import Response

from fhir_mappings import outcomes
from referral_service.api.fhir_responses import outcome_response
from referral_service.logging import get_logger
from referral_service.store.intake_rates import IntakeRates

log = get_logger()


async def throttled(rates: IntakeRates, source_id: str) -> Response | None:
    """Take ``source_id``'s turn: ``None`` when it may go on, else the 429 (with ``Retry-After``) to answer."""
    wait = await rates.retry_after(source_id)
    if not wait:
        return None
    log.warning("intake throttled", source_id=source_id, retry_after=wait)
    busy = outcomes.throttled(f"too many referrals from {source_id}; retry after {wait} s")
    return outcome_response([busy], headers={"Retry-After": str(wait)})
