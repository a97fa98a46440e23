"""A real worker per test, on its own task queue of the time-skipping server, writing to HAPI."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.ehr.client import FhirClient
from referral_service.worker import create_worker
from tests.conftest import HAPI_SOURCE_ID
from tests.workflows.stories import end_leftovers


@pytest.fixture
async def task_queue(time_skipping_env: WorkflowEnvironment, hapi_client: FhirClient) -> AsyncIterator[str]:
    """A fresh task queue served by a real worker for this test."""
    queue = f"referrals-{uuid.uuid4().hex[:8]}"
    async with create_worker(time_skipping_env.client, queue, {HAPI_SOURCE_ID: hapi_client}):
        yield queue
        await end_leftovers(queue)
