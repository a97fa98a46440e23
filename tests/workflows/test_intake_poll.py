"""Intake by poll: a Temporal Schedule searches the referring EHR (HAPI) and starts or cancels referrals.

Real parts only: the Temporal dev server runs the Schedule (the time-skipping server has none), a real
worker runs the poll and the referral workflows, and the ServiceRequest lives in the HAPI test server.
The program here has its own organization, so the poll takes only this test's referral; every other
ServiceRequest in HAPI is addressed to another performer and is skipped.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from referral_service.activities.intake_poll import FindReferralsInput, IntakePollActivities
from referral_service.config import Settings
from referral_service.config.sources import SourceSettings
from referral_service.domain.lifecycle import Phase
from referral_service.domain.program import Program
from referral_service.domain.referral import Identifier, ResourceRef, referral_key
from referral_service.ehr.client import FhirClient
from referral_service.ehr.source import SourceConfig
from referral_service.intake.starts import ReferralStarts
from referral_service.intake.take_in import Intake
from referral_service.temporal_client.poll_schedules import ensure_poll_schedules
from referral_service.worker import create_worker
from tests.polling import eventually
from tests.referrals import referral_bundle
from tests.workflows.stories import in_phase, referral_phase, written

NPI = "http://hl7.org/fhir/sid/us-npi"
pytestmark = pytest.mark.timeout(300)


def _addressed_to(bundle: dict[str, Any], organization: ResourceRef) -> dict[str, Any]:
    [request] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
    assert organization.identifier is not None
    request["performer"] = [{"type": "Organization", "identifier": organization.identifier.model_dump()}]
    return request


async def test_a_referral_written_in_the_ehr_is_taken_in_by_the_poll_once_and_cancelled_when_revoked(
    temporal_env: WorkflowEnvironment, hapi_client: FhirClient, program: Program
) -> None:
    client = temporal_env.client
    ours = ResourceRef(
        resource_type="Organization", identifier=Identifier(system=NPI, value=f"19{uuid.uuid4().int % 10**8:08d}")
    )
    our_program = program.model_copy(update={"organization": ours})
    source_id = f"poll-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        task_queue=f"poll-{uuid.uuid4().hex[:8]}",
        sources=(
            SourceSettings(id=source_id, base_url=hapi_client.source.base_url, poll=True, poll_interval_seconds=1),
        ),
    )
    bundle = referral_bundle("ada-testpatient-adult-inpatient")
    request = _addressed_to(bundle, ours)
    placer = Identifier(**request["identifier"][0])
    key = referral_key(source_id, placer)
    await hapi_client.transaction(bundle)

    ehr = FhirClient(SourceConfig(id=source_id, base_url=hapi_client.source.base_url))
    async with ehr, create_worker(client, settings.task_queue, {source_id: ehr}, our_program):
        [schedule_id] = await ensure_poll_schedules(client, settings, our_program)
        try:
            await eventually(lambda: referral_phase(client, key), "the polled referral's workflow", patience_s=90)
            tasks = await eventually(
                lambda: written(hapi_client, "Task", f"{key}/task"), "the referral's Task", patience_s=90
            )
            polls_before = await _polls(client, schedule_id)
            await eventually(
                lambda: _polled(client, schedule_id, polls_before + 2), "two more polls of the EHR", patience_s=90
            )
            assert (await client.count_workflows(f"WorkflowId = '{key}'")).count == 1  # not started again

            [stored] = await hapi_client.search("ServiceRequest", {"identifier": f"{placer.system}|{placer.value}"})
            await hapi_client.update({**stored, "status": "revoked"}, if_match_version=stored["meta"]["versionId"])
            await eventually(
                lambda: in_phase(client, key, Phase.CANCELLED), "the revoked referral to be cancelled", patience_s=90
            )
        finally:
            await client.get_schedule_handle(schedule_id).delete()
    assert [task["status"] for task in tasks] == ["received"]
    [cancelled] = await written(hapi_client, "Task", f"{key}/task")
    assert cancelled["status"] == "cancelled"


async def _polls(client: Client, schedule_id: str) -> int:
    return (await client.get_schedule_handle(schedule_id).describe()).info.num_actions


async def _polled(client: Client, schedule_id: str, at_least: int) -> bool:
    return await _polls(client, schedule_id) >= at_least


async def test_the_poll_refuses_what_a_push_would_refuse(
    temporal_env: WorkflowEnvironment, hapi_client: FhirClient, program: Program
) -> None:
    """A referral authored in the future, and an active lab order with no performer, are skipped by the poll
    (``POST /fhir`` would refuse the first, and a poll takes only what names the program), while a good one
    written at the same moment is taken in: its workflow started by the same intake every route uses."""
    ours = ResourceRef(
        resource_type="Organization", identifier=Identifier(system=NPI, value=f"19{uuid.uuid4().int % 10**8:08d}")
    )
    since = datetime.now(UTC) - timedelta(seconds=5)
    good, future, lab = (referral_bundle("ada-testpatient-adult-inpatient") for _ in range(3))
    _addressed_to(good, ours)
    _addressed_to(future, ours)["authoredOn"] = "2099-01-01T09:00:00Z"
    lab_order = _addressed_to(lab, ours)
    lab_order.pop("performer")
    lab_order["code"] = {"coding": [{"system": "http://loinc.org", "code": "24323-8"}]}
    for bundle in (good, future, lab):
        await hapi_client.transaction(bundle)

    starts = ReferralStarts(
        temporal_env.client, f"poll-{uuid.uuid4().hex[:8]}", program.model_copy(update={"organization": ours}), b"t"
    )
    async with FhirClient(SourceConfig(id="ehr", base_url=hapi_client.source.base_url)) as ehr:
        polling = IntakePollActivities({"ehr": ehr}, Intake(starts).take_in_polled)
        found = await ActivityEnvironment().run(
            polling.find_changed_referrals, FindReferralsInput(source_id="ehr", since=since)
        )

    assert found.started == 1
    assert found.skipped >= 2  # the two above, and whatever other tests wrote meanwhile
    keys = {
        name: referral_key("ehr", Identifier(**_addressed_to(b, ours)["identifier"][0]))
        for name, b in (("good", good), ("future", future), ("lab", lab))
    }
    described = await temporal_env.client.get_workflow_handle(keys["good"]).describe()
    assert described.workflow_type == "ReferralWorkflow"
    await temporal_env.client.get_workflow_handle(keys["good"]).terminate("test over: no worker serves its queue")
    for refused in ("future", "lab"):
        with pytest.raises(RPCError):
            await temporal_env.client.get_workflow_handle(keys[refused]).describe()
