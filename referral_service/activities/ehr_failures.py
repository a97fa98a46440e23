"""An EHR failure as the activity error Temporal retries: when the EHR (``429``/``503`` with ``Retry-After``) or the
source's own call limits said how long to wait, the next attempt comes after that wait, not the retry policy's.

Handing the wait back to Temporal rather than sleeping in the activity keeps it durable (a worker restart loses
nothing) and frees the worker's slot; the retried write is the same conditional write, so it lands once."""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from referral_service.ehr.errors import FhirError, TransientError


def activity_error(error: FhirError, *, non_retryable: bool = False) -> ApplicationError:
    """``error`` as an ``ApplicationError`` of its class's name (the caller judges whether a retry can help)."""
    wait = error.retry_after if isinstance(error, TransientError) else None
    return ApplicationError(
        str(error),
        type=type(error).__name__,
        non_retryable=non_retryable,
        next_retry_delay=timedelta(seconds=wait) if wait else None,
    )
