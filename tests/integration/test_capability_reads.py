"""The referring EHR's CapabilityStatement, which every CarePlan and Encounter write consults, is read once per
worker however many writes first need it at the same moment (HAPI's is ~100 KB and costs it ~0.2 s of CPU to
answer). Real HAPI; the write activities run as a worker runs them, several at once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from temporalio.testing import ActivityEnvironment

from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from fhir_mappings.referral_in import referral_from_fhir
from referral_service.activities.write_inputs import WriteEncounterInput
from referral_service.activities.writeback import WritebackActivities
from referral_service.domain.program import Program
from referral_service.ehr.client import FhirClient, FhirExchange
from referral_service.ehr.source import SourceConfig
from tests.conftest import HAPI_SOURCE_ID
from tests.referrals import referral_bundle
from tests.workflows.stories import session

WRITES_AT_ONCE = 6


async def test_writes_that_first_need_the_statement_at_once_read_it_once(
    hapi_base_url: str, hapi_client: FhirClient, program: Program
) -> None:
    bundle = referral_bundle("ada-testpatient-adult-inpatient")
    await hapi_client.transaction(bundle)
    referral = referral_from_fhir(bundle, source_id=HAPI_SOURCE_ID, program_org=program.organization)
    requests: Counter[str] = Counter()

    def seen(exchange: FhirExchange) -> None:
        requests[f"{exchange.method} {exchange.url.split('?')[0]}"] += 1

    async with FhirClient(SourceConfig(id=HAPI_SOURCE_ID, base_url=hapi_base_url), observer=seen) as ehr:
        writes = WritebackActivities({HAPI_SOURCE_ID: ehr})
        run = f"capability-{uuid.uuid4().hex[:8]}"
        inputs = [
            WriteEncounterInput(
                key=f"{run}/encounter/s{n}",
                referral=referral.references(),
                organization=program.organization,
                session=session(n).session,
            )
            for n in range(1, WRITES_AT_ONCE + 1)
        ]
        environment = ActivityEnvironment()
        written = await asyncio.gather(*(environment.run(writes.write_encounter, i) for i in inputs))
        assert requests["GET metadata"] == 1
        # A later write goes by what was read, without asking again.
        await environment.run(writes.write_encounter, inputs[0])
        assert requests["GET metadata"] == 1

    # HAPI offers Encounter updates, so each session is an Encounter in the chart, not a note standing in for one.
    assert {w.resource_type for w in written} == {"Encounter"}
    for request in inputs:
        found = await hapi_client.search("Encounter", {"identifier": f"{RESOURCE_KEY_SYSTEM}|{request.key}"})
        assert len(found) == 1
