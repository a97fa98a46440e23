"""``referral-service dev --demo``'s caseload, loaded through the real API into the Temporal dev server and HAPI:
thirty referrals from the shipped scenarios, each in the phase its story has reached today."""

from __future__ import annotations

from collections import Counter

import pytest
from temporalio.testing import WorkflowEnvironment

from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient
from referral_service.replay.demo import PLAN, load_demo
from tests.api_server import running_api

pytestmark = pytest.mark.timeout(600)


async def test_the_demo_caseload_puts_referrals_in_every_phase(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient, program: Program
) -> None:
    lines: list[str] = []
    async with running_api(temporal_env, hapi_base_url, hapi_client, queue_prefix="demo") as api_url:
        phases = await load_demo(api_url, temporal_env.client, hapi_client, program, progress=lines.append)

    assert phases == Counter(
        screening=7,
        waitlisted=2,
        declined=2,
        intake_scheduled=3,
        in_treatment=9,
        aftercare=2,
        closed=2,
        transferred=1,
        cancelled=2,
    ), "\n".join(lines)
    assert len(PLAN) == 30
    assert len(lines) == len(PLAN)
    assert lines[-1].startswith("demo: 30/30 ")
