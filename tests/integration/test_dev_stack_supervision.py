"""The embedded stack's supervisor with its real children: the Temporal dev server SIGKILLed comes back (it died),
HAPI SIGSTOPped comes back (it stopped answering its /metadata probe), each with a log line naming it and why, and
the stack serves again with its state: Temporal's search attributes and what HAPI held before."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from temporalio.client import Client

from referral_service.config import Settings
from referral_service.devstack import hapi_server
from referral_service.devstack.process import free_port
from referral_service.devstack.stack import DevPorts, servers
from referral_service.devstack.supervisor import Child, SupervisionPolicy
from referral_service.ehr.client import FhirClient
from referral_service.ehr.source import SourceConfig
from referral_service.temporal_client.search_attribute_setup import missing_search_attributes
from tests.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

FAST = SupervisionPolicy(probe_every_s=1, failures=3, first_backoff_s=1, stop_grace_s=5)
HAPI_BOOT_S = 600  # a JVM on a shared two-core machine
NOTE = {"resourceType": "Basic", "identifier": [{"system": "urn:iop-test:kept", "value": "1"}], "code": {"text": "x"}}


async def restarted(child: Child, before: int) -> bool:
    """A new process of ``child`` that answers its probe."""
    if child.process.process.pid == before or not child.process.running:
        return False
    return await asyncio.to_thread(child.probe)


async def test_a_dead_or_silent_child_is_restarted_and_the_stack_serves_again(tmp_path: Path):
    ports = DevPorts(free_port(), free_port(), free_port(), free_port())
    with capture_logs() as logs:
        async with servers(Settings(state_dir=tmp_path / "state"), ports, supervision=FAST) as stack:
            temporal, hapi = stack.supervisor.child("Temporal"), stack.supervisor.child("HAPI")
            async with FhirClient(SourceConfig(id="ehr", base_url=stack.hapi_base_url, timeout_seconds=60)) as ehr:
                kept = await ehr.update_conditional(NOTE, "identifier=urn:iop-test:kept|1")

                dead = temporal.process.process.pid
                temporal.process.kill()
                await eventually(lambda: restarted(temporal, dead), "the Temporal dev server back", 120)
                client = await Client.connect(stack.settings.temporal_address)
                assert await missing_search_attributes(client) == []

                silent = hapi.process.process.pid
                os.kill(silent, signal.SIGSTOP)  # alive, but answers nothing
                await eventually(lambda: restarted(hapi, silent), "HAPI back", HAPI_BOOT_S)
                assert (await ehr.read("Basic", kept.id))["identifier"] == NOTE["identifier"]
                again = await ehr.update_conditional(NOTE, "identifier=urn:iop-test:kept|1")
                assert (again.id, again.created) == (kept.id, False)
            assert (temporal.restarts, hapi.restarts) == (1, 1)
    restarts = [(e["service"], e["reason"]) for e in logs if e["event"] == "restarting a dev server"]
    assert restarts == [("Temporal", "exited with code -9"), ("HAPI", "health probe failed 3 times in a row")]
    assert [e["service"] for e in logs if e["event"] == "dev server restarted"] == ["Temporal", "HAPI"]
    assert hapi_server.metadata_ready(stack.hapi_base_url) is False  # and everything stopped at the end
