"""The call limits of one source in one process (``ehr.throttle``): the token bucket on a given clock, and a call
that finds no room within its wait is not sent but fails as a ``ThrottledError`` naming the wait."""

from __future__ import annotations

import pytest

from referral_service.ehr.errors import ThrottledError, TransientError
from referral_service.ehr.throttle import CallLimits, LocalRate, SourceThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_bucket_gives_a_burst_then_the_rate_and_holds_off_for_retry_after():
    clock = Clock()
    rate = LocalRate(CallLimits(per_second=4, burst=2), clock)
    assert [await rate.take(), await rate.take()] == [0.0, 0.0]
    assert await rate.take() == pytest.approx(0.25)
    clock.now += 0.25
    assert await rate.take() == 0.0
    await rate.hold_off(10)
    clock.now += 5
    assert await rate.take() == pytest.approx(5)
    clock.now += 5
    assert await rate.take() == 0.0


async def test_a_call_without_a_free_slot_within_its_wait_is_throttled():
    throttle = SourceThrottle("ehr", CallLimits(max_in_flight=1, max_wait_seconds=0.05))
    async with throttle.call():
        with pytest.raises(ThrottledError) as raised:
            async with throttle.call():
                pytest.fail("a second call went while the only slot was held")
    assert isinstance(raised.value, TransientError)
    assert raised.value.retry_after == pytest.approx(0.05)
    async with throttle.call():  # the slot is free again
        pass


async def test_a_call_whose_token_is_further_off_than_its_wait_is_throttled():
    throttle = SourceThrottle("ehr", CallLimits(per_second=0.5, burst=1, max_wait_seconds=1))
    async with throttle.call():
        pass
    with pytest.raises(ThrottledError) as raised:
        async with throttle.call():
            pytest.fail("a call went without a token")
    assert raised.value.retry_after == pytest.approx(2, abs=0.1)
