"""Intake latency (P1): from the hospital's ``POST /fhir`` of a referral to its acknowledgement Task, CareTeam
and CarePlan being readable in the EHR, against HAPI accepting the same writes sent to it directly.

    .venv/bin/python -m bench.intake [--referrals 200]

Per referral (a fresh copy of Ada's transaction Bundle: new order number, MRN, encounter and given name, so each
is a patient of its own, seeded in HAPI first as the hospital's EHR holds it, outside the timing), both of these:

- service: ``POST /fhir`` (the API: validate, map, duplicate-patient check, start the workflow), then at
  once ``POST /api/referrals/ID/decision`` (accept, adult-mh), which returns when the workflow has written
  the receipt Task and the acceptance (CareTeam, CarePlan, Task: one transaction where the EHR offers it);
  then one read of each by business identifier. The API and a worker run in this process (uvicorn on a free port,
  real HTTP), on the Temporal dev server and HAPI.
- baseline: the same writes sent straight to HAPI the way the service sends them (since issue 18: the receipt
  Task's conditional PUT, then the acceptance's CareTeam, CarePlan and Task as one transaction of conditional
  updates), bodies from the same mappers, for the same referral under a second business identifier so they
  create as the service's do, with the worker's EHR client; then the same three reads.

Service and baseline alternate referral by referral, so load from other jobs falls on both. Each path's legs are
timed as well (the service: the POST answered, the decision answered, the reads; the baseline: the receipt Task, the
acceptance transaction, the reads), so the table shows where the difference is spent. Writes
bench/results/intake.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.report import machine, write_result
from bench.servers import Servers, real_servers
from fhir_mappings import careplan, careteam, task
from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from fhir_mappings.referral_in import referral_from_fhir
from fhir_mappings.write_transaction import Keyed, acceptance_transaction
from referral_service.domain.careteam import assign_team
from referral_service.domain.program import Program
from referral_service.domain.referral import Referral, referral_key
from referral_service.programs import DEFAULT_PROGRAM_FILE, load_program
from tests.api_server import running_api
from tests.conftest import HAPI_SOURCE_ID
from tests.referrals import referral_bundle

ADA = "ada-testpatient-adult-inpatient"
TRACK = "adult-mh"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
READS = (("Task", "task"), ("CareTeam", "careteam"), ("CarePlan", "careplan"))


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0-1), nearest rank."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def distribution(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {"p50_ms": percentile(ms, 0.5), "p95_ms": percentile(ms, 0.95), "mean_ms": statistics.fmean(ms)}


async def seeded(
    servers: Servers, program: Program, *, discharged_on: date | None = None
) -> tuple[dict[str, Any], Referral]:
    """A new referral in the EHR, as the hospital holds it (leaving hospital on ``discharged_on``, default the
    fixture's date); the Bundle and what the service maps it to."""
    bundle = another_patient(referral_bundle(ADA, discharged_on=discharged_on))
    await servers.hapi.transaction(bundle)
    referral = referral_from_fhir(bundle, source_id=HAPI_SOURCE_ID, program_org=program.organization)
    return bundle, referral


def another_patient(bundle: dict[str, Any]) -> dict[str, Any]:
    """Ada's Bundle for a patient of her own: a new given name as well as a new MRN, so the intake's duplicate-patient
    check (identifiers, or name and birth date) finds no other open referral, as for most real referrals. With
    Ada's name every bench referral matched all those open before it, and each intake flagged 20 duplicates."""
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Patient":
            entry["resource"]["name"][0]["given"] = [f"Ada{uuid.uuid4().hex[:6]}"]
    return bundle


async def readable(servers: Servers, key: str) -> None:
    """The Task, CareTeam and CarePlan of ``key``, read back by business identifier: each must be there."""
    for resource_type, suffix in READS:
        found = await servers.hapi.search(resource_type, {"identifier": f"{RESOURCE_KEY_SYSTEM}|{key}/{suffix}"})
        if len(found) != 1:
            raise RuntimeError(f"{resource_type} of a referral is not readable in HAPI ({len(found)} found)")


class Legs:
    """The seconds each leg of one timed path took, in order (``mark`` ends one), and their sum."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._since = time.perf_counter()

    def mark(self) -> None:
        now = time.perf_counter()
        self.seconds.append(now - self._since)
        self._since = now

    @property
    def total(self) -> float:
        return sum(self.seconds)


# Where each path's time goes: the names of its legs, in the order ``Legs`` records them.
SERVICE_LEGS = ("POST /fhir answered", "decision answered", "three reads")
DIRECT_LEGS = ("receipt Task written", "acceptance transaction", "three reads")


async def through_service(servers: Servers, api: httpx.AsyncClient, bundle: dict[str, Any], key: str) -> Legs:
    legs = Legs()
    submitted = await api.post("/fhir", content=json.dumps(bundle).encode(), headers=FHIR_JSON)
    submitted.raise_for_status()
    legs.mark()
    decided = await api.post(f"/api/referrals/{key}/decision", json={"decision": "accept", "track_id": TRACK})
    decided.raise_for_status()
    legs.mark()
    await readable(servers, key)
    legs.mark()
    return legs


async def direct(servers: Servers, program: Program, referral: Referral, key: str) -> Legs:
    """The writes the workflow makes from receipt to intake scheduled, sent the way it sends them: the receipt
    Task, then the acceptance as one transaction (the plan names the team, the Task lists the plan), each body
    from the same mapper."""
    legs = Legs()
    received = datetime.now(UTC)
    today = received.date()
    org = program.organization

    def referral_task(status: str, business_status: str) -> dict[str, Any]:
        return task.referral_task(
            referral,
            key=f"{key}/task",
            owner=org,
            status=status,
            business_status=business_status,
            authored_on=received,
            last_modified=datetime.now(UTC),
        )

    await servers.hapi.update_conditional(
        referral_task("received", "created"), f"identifier={RESOURCE_KEY_SYSTEM}|{key}/task"
    )
    legs.mark()
    team = assign_team(program, TRACK, {})
    team_body = careteam.care_team(referral, team, key=f"{key}/careteam", organization=org, active=True, start=today)
    plan = careplan.treatment_plan(
        referral, program.track(TRACK), key=f"{key}/careplan", status="active", start=today, care_team=None
    )
    await servers.hapi.transaction(
        acceptance_transaction(
            Keyed(f"{key}/careteam", team_body),
            Keyed(f"{key}/careplan", plan),
            Keyed(f"{key}/task", referral_task("accepted", "event-scheduled")),
        )
    )
    legs.mark()
    await readable(servers, key)
    legs.mark()
    return legs


def roomy_program(folder: Path) -> Path:
    """The shipped program with room on every caseload: each measured referral is accepted and stays open, and
    a full caseload would refuse the later ones (the team is assigned by caseload, as in production)."""
    text = re.sub(r"caseload_limit = \d+", "caseload_limit = 100000", DEFAULT_PROGRAM_FILE.read_text())
    path = folder / "bench-program.toml"
    path.write_text(text)
    return path


async def measure(servers: Servers, referrals: int) -> dict[str, Any]:
    program_file = roomy_program(Path(tempfile.mkdtemp(prefix="bench-intake-")))
    program = load_program(program_file)
    service: list[Legs] = []
    baseline: list[Legs] = []
    async with (
        running_api(
            servers.temporal,
            servers.hapi_base_url,
            servers.hapi,
            queue_prefix="bench-intake",
            overrides={"program_file": program_file},
        ) as url,
        # a new connection per referral, as a hospital sends them: no idle keep-alive for uvicorn to close under us
        httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_keepalive_connections=0)) as api,
    ):
        for n in range(referrals + 1):  # the first pair warms both paths up and is not counted
            bundle, referral = await seeded(servers, program)
            key = referral_key(HAPI_SOURCE_ID, referral.placer_identifier)
            ours = await through_service(servers, api, bundle, key)
            raw = await direct(servers, program, referral, f"{key}-direct")
            if n:
                service.append(ours)
                baseline.append(raw)
            if n % 20 == 0:
                print(f"  intake: {n}/{referrals}", file=sys.stderr, flush=True)
    ours_d, raw_d = distribution([legs.total for legs in service]), distribution([legs.total for legs in baseline])
    return {
        "figure": "P1 intake latency",
        "referrals": referrals,
        "service": ours_d,
        "hapi_direct": raw_d,
        "service_legs": legs_of(service, SERVICE_LEGS),
        "hapi_direct_legs": legs_of(baseline, DIRECT_LEGS),
        "p50_ratio": ours_d["p50_ms"] / raw_d["p50_ms"],
        "p95_ratio": ours_d["p95_ms"] / raw_d["p95_ms"],
        "goal": "p95 <= 1.3x",
    }


def legs_of(timed: list[Legs], names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Each leg's distribution over the sample, by name."""
    return {name: distribution([legs.seconds[n] for legs in timed]) for n, name in enumerate(names)}


def print_table(result: dict[str, Any]) -> None:
    print(
        f"P1 intake latency: {result['referrals']} referrals, POST /fhir + accept until Task, CareTeam, CarePlan "
        "readable in HAPI"
    )
    print(f"  {'':<34} {'p50 ms':>8} {'p95 ms':>8}")
    for label, d in (
        ("service (API + workflow)", result["service"]),
        ("same writes sent to HAPI", result["hapi_direct"]),
    ):
        print(f"  {label:<34} {d['p50_ms']:>8.0f} {d['p95_ms']:>8.0f}")
    print(f"  ratio p50 {result['p50_ratio']:.2f}x, p95 {result['p95_ratio']:.2f}x (goal {result['goal']})")
    for side, key in (("service", "service_legs"), ("HAPI direct", "hapi_direct_legs")):
        print(f"  where the {side}'s time goes:")
        for name, d in result[key].items():
            print(f"    {name:<32} {d['p50_ms']:>8.0f} {d['p95_ms']:>8.0f}")


async def _with_servers(referrals: int) -> dict[str, Any]:
    async with real_servers() as servers:
        return await measure(servers, referrals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--referrals", type=int, default=200)
    args = parser.parse_args()
    result = asyncio.run(_with_servers(args.referrals))
    print_table(result)
    write_result("intake", {"machine": machine(), **result})


if __name__ == "__main__":
    main()
