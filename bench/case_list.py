"""Case-manager list (P4): ``GET /api/referrals`` with filters over N open referrals, against the bare
visibility list call with the same query, alternating request by request in the same run.

The N open referrals are ReferralWorkflow executions started as the intake API starts them (same input,
id and start-time search attributes: phase, source, at-risk) on a task queue no worker polls, so they stay
open without EHR writes. Phases and sources are spread so the filter matches one in eight (at most a page
of 200 comes back, the list's default limit).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from bench.intake import distribution
from bench.servers import Servers
from fhir_mappings.referral_in import referral_from_fhir
from referral_service.programs import load_program
from tests.api_server import running_api
from tests.conftest import HAPI_SOURCE_ID
from tests.referrals import referral_bundle
from workflows import search_attributes
from workflows.referral import ReferralWorkflow
from workflows.referral_types import StartReferralInput

PHASES = ("received", "screening", "waitlisted", "in_treatment")
SOURCES = (HAPI_SOURCE_ID, "hapi-test-2")
FILTER = {"phase": "screening", "source": HAPI_SOURCE_ID}
QUERY = (
    f"WorkflowType = 'ReferralWorkflow' AND ({search_attributes.PHASE.name} = 'screening')"
    f" AND {search_attributes.SOURCE.name} = '{HAPI_SOURCE_ID}'"
)  # what the API builds for FILTER (referral_routes.referral_query)
PAGE = 200
STARTING_AT_ONCE = 50


async def open_referrals(servers: Servers, count: int) -> float:
    """Start ``count`` referrals that stay open; returns the starts per second."""
    program = load_program()
    referral = referral_from_fhir(
        referral_bundle("ada-testpatient-adult-inpatient"), source_id=HAPI_SOURCE_ID, program_org=program.organization
    )
    queue = f"bench-unpolled-{uuid.uuid4().hex[:8]}"
    spread = itertools.cycle(itertools.product(PHASES, SOURCES))
    client = servers.temporal.client

    async def start(n: int, phase: str, source: str) -> None:
        key = f"{source}-bench-{n}-{uuid.uuid4().hex[:6]}"
        start_input = StartReferralInput(key=key, referral=referral, program=program, received_at=datetime.now(UTC))
        attributes: list[SearchAttributePair[Any]] = [
            SearchAttributePair(search_attributes.PHASE, phase),
            SearchAttributePair(search_attributes.SOURCE, source),
            SearchAttributePair(search_attributes.AT_RISK, False),
        ]
        await client.start_workflow(
            ReferralWorkflow.run,
            start_input,
            id=key,
            task_queue=queue,
            search_attributes=TypedSearchAttributes(attributes),
        )

    began = time.perf_counter()
    for batch_start in range(0, count, STARTING_AT_ONCE):
        batch = range(batch_start, min(count, batch_start + STARTING_AT_ONCE))
        await asyncio.gather(*(start(n, *next(spread)) for n in batch))
        if batch_start % 1000 == 0:
            print(f"  case list: {batch_start:,}/{count:,} referrals open", file=sys.stderr, flush=True)
    rate = count / (time.perf_counter() - began)
    query = f"WorkflowType = 'ReferralWorkflow' AND TaskQueue = '{queue}'"
    for _ in range(600):  # visibility catches up a moment later
        if (await client.count_workflows(query)).count >= count:
            return rate
        await asyncio.sleep(0.5)
    raise RuntimeError("visibility did not list every started referral within 5 minutes")


async def measure(servers: Servers, count: int, requests: int) -> dict[str, Any]:
    starts_per_s = await open_referrals(servers, count)
    client = servers.temporal.client
    through_api: list[float] = []
    bare: list[float] = []
    rows: set[int] = set()
    async with (
        running_api(servers.temporal, servers.hapi_base_url, servers.hapi, queue_prefix="bench-list") as url,
        httpx.AsyncClient(base_url=url, timeout=60) as api,
    ):
        for n in range(requests + 1):  # the first pair warms up and is not counted
            start = time.perf_counter()
            response = await api.get("/api/referrals", params=FILTER)
            response.raise_for_status()
            ours = time.perf_counter() - start
            start = time.perf_counter()
            listed = [execution.id async for execution in client.list_workflows(QUERY, limit=PAGE)]
            raw = time.perf_counter() - start
            rows.add(len(response.json()))
            if len(listed) < len(response.json()):
                raise RuntimeError("the bare list call returned fewer rows than the API")
            if n:
                through_api.append(ours)
                bare.append(raw)
    ours_d, raw_d = distribution(through_api), distribution(bare)
    return {
        "figure": "P4 case-manager list",
        "open_referrals": count,
        "starts_per_s": starts_per_s,
        "filter": FILTER,
        "rows_returned": sorted(rows),
        "requests": requests,
        "api": ours_d,
        "bare_list_workflows": raw_d,
        "p50_ratio": ours_d["p50_ms"] / raw_d["p50_ms"],
        "p95_ratio": ours_d["p95_ms"] / raw_d["p95_ms"],
        "goal": "p95 <= 300 ms",
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"P4 case-manager list: GET /api/referrals?phase=screening&source={HAPI_SOURCE_ID} over "
        f"{result['open_referrals']:,} open referrals ({result['rows_returned']} rows), {result['requests']} requests"
    )
    print(f"  {'':<34} {'p50 ms':>8} {'p95 ms':>8}")
    for label, d in (
        ("API (HTTP, JSON rows)", result["api"]),
        ("bare list_workflows, same query", result["bare_list_workflows"]),
    ):
        print(f"  {label:<34} {d['p50_ms']:>8.1f} {d['p95_ms']:>8.1f}")
    print(f"  ratio p50 {result['p50_ratio']:.2f}x, p95 {result['p95_ratio']:.2f}x (goal {result['goal']})")
