"""The crash soak on the deployed topology: referrals come in through either API process and run whole
lifecycles while one worker, one API process, the Temporal history service and PostgreSQL (under Temporal, HAPI
and the service database at once) are each SIGKILLed and started again. At the end every referral is closed
(0 stuck), HAPI holds each resource the workflows wrote exactly once, counted by business identifier (0 lost,
0 duplicated), and every read-model row in the shared PostgreSQL database is the one its finished workflow gives.

``IOP_DEPLOYED_SOAK_REFERRALS`` (default 12) sets the size.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from temporalio.client import Client

from referral_service.devstack.deployed import Deployment
from referral_service.devstack.postgres_server import start_postgres
from referral_service.domain.program import Program
from referral_service.domain.referral import Identifier, referral_key
from referral_service.ehr.client import FhirClient
from referral_service.store.database import open_database
from referral_service.temporal_client.key_ring_secrets import referral_rows
from tests.api_driver import ADA
from tests.conftest import HAPI_SOURCE_ID
from tests.deployed.topology import EitherApi
from tests.oidc_provider import OidcProvider
from tests.program_day import program_today
from tests.referrals import referral_bundle
from tests.soak.lifecycle import SESSIONS, lifecycle, tally

REFERRALS = int(os.environ.get("IOP_DEPLOYED_SOAK_REFERRALS", "12"))
CONCURRENCY = 6
pytestmark = pytest.mark.timeout(max(1200, 10 * REFERRALS))


async def _submit(http: httpx.AsyncClient, bundle: dict[str, object]) -> str:
    """Post one referral until an API process answers for it: the same Bundle again after a process died
    mid-request finds the same referral (201 first, 200 after)."""
    [request] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]  # type: ignore[index,union-attr]
    while True:
        try:
            answer = await http.post("/fhir", json=bundle, headers={"Content-Type": "application/fhir+json"})
        except httpx.TransportError:
            await asyncio.sleep(1)
            continue
        if answer.status_code in (200, 201):
            placer = request["identifier"][0]
            return referral_key(HAPI_SOURCE_ID, Identifier(system=placer["system"], value=placer["value"]))
        assert answer.status_code >= 500 or answer.status_code == 429, answer.text  # a 4xx is our mistake
        await asyncio.sleep(1)


async def _faults(deployment: Deployment, killed: list[str]) -> None:
    """One after another, a few seconds apart: each process SIGKILLed, then started again on its state."""
    worker, api, temporal = deployment.workers[0], deployment.apis[1], deployment.temporal
    postgres_port = deployment.postgres.port

    def start_postgres_again() -> None:
        deployment.postgres = start_postgres(deployment.state_dir / "postgres", postgres_port)

    faults: list[tuple[str, Callable[[], None], Callable[[], object]]] = [
        ("worker-1", worker.kill, worker.start),
        ("api-2", api.kill, api.start),
        ("temporal history", temporal.services["history"].kill, lambda: temporal.start_service("history")),
        ("postgresql", deployment.postgres.process.kill, start_postgres_again),
    ]
    for name, kill, start in faults:
        await asyncio.sleep(6)
        kill()
        await asyncio.sleep(2)
        await asyncio.to_thread(start)
        killed.append(name)


async def test_nothing_is_lost_duplicated_or_stuck_when_each_process_is_killed(
    deployment: Deployment,
    deployed_oidc: OidcProvider,
    deployed_temporal: Client,
    deployed_hapi: FhirClient,
    program: Program,
) -> None:
    started = time.monotonic()
    discharged_on = program_today(program=program) - timedelta(days=SESSIONS)
    hospital = {"Authorization": f"Bearer {deployed_oidc.access_token('referring-system', source=HAPI_SOURCE_ID)}"}
    proxy = EitherApi(deployment.api_urls)
    killed: list[str] = []
    async with httpx.AsyncClient(
        base_url=deployment.api_urls[0], transport=proxy, headers=hospital, timeout=30
    ) as http:
        chaos = asyncio.create_task(_faults(deployment, killed))
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one() -> str:
            async with limit:
                key = await _submit(http, referral_bundle(ADA, discharged_on=discharged_on))
                await lifecycle(deployed_temporal, key, discharged_on, program)
                return key

        keys = await asyncio.gather(*(one() for _ in range(REFERRALS)))
        await chaos

    engine = open_database(deployment.service_env["IOP_DATABASE_URL"])
    found = await tally(deployed_temporal, deployed_hapi, list(keys), referral_rows(deployed_temporal, engine))
    engine.dispose()
    print(
        f"\ndeployed soak: {REFERRALS} referrals in {time.monotonic() - started:.0f}s; killed and restarted: "
        f"{', '.join(killed)}; {found.resources} resources in HAPI; lost {len(found.lost)}, duplicated "
        f"{len(found.duplicated)}, read-model rows not converged {len(found.stale_rows)}"
    )
    assert killed == ["worker-1", "api-2", "temporal history", "postgresql"]
    assert found.lost == []
    assert found.duplicated == []
    assert found.stale_rows == []
