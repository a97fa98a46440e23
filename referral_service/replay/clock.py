"""Skipping the time-skipping test server's clock, patiently.

``WorkflowEnvironment.sleep`` sends one RPC with the client's default deadline; the server answers only once
its virtual clock has reached the target, and the clock stands still while activities run. On a busy machine
the EHR writes that fall due on the way take longer than that deadline, and the sleep fails with "Timeout
expired" although nothing is wrong. This sends the same request with a deadline sized for real EHR writes.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.testservice.v1 import SleepRequest
from temporalio.client import Client

SKIP_DEADLINE = timedelta(minutes=5)


async def skip_time(client: Client, duration: timedelta) -> None:
    """Move the test server's clock ``duration`` ahead; timers due on the way fire and their work completes."""
    request = SleepRequest()
    request.duration.FromTimedelta(duration)
    await client.test_service.unlock_time_skipping_with_sleep(request, timeout=SKIP_DEADLINE)
