"""An EHR failure as the activity error Temporal retries: the EHR's (or the call limits') wait becomes the next
attempt's delay; without one, the retry policy's backoff applies."""

from __future__ import annotations

from datetime import timedelta

from referral_service.activities.ehr_failures import activity_error
from referral_service.ehr.errors import PermanentError, ThrottledError, TransientError


def test_retry_after_becomes_the_next_retry_delay():
    error = activity_error(TransientError("Too Many Requests", status=429, retry_after=7))
    assert (error.type, error.non_retryable, error.next_retry_delay) == ("TransientError", False, timedelta(seconds=7))
    throttled = activity_error(ThrottledError("8 calls already in flight", retry_after=20))
    assert (throttled.type, throttled.next_retry_delay) == ("ThrottledError", timedelta(seconds=20))


def test_without_a_wait_the_retry_policy_decides():
    assert activity_error(TransientError("Bad Gateway", status=502)).next_retry_delay is None
    refused = activity_error(PermanentError("Bad Request", status=400), non_retryable=True)
    assert (refused.non_retryable, refused.next_retry_delay) == (True, None)
