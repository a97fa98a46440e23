"""Read model (P6), the pages: ``/caseload`` and ``/inbox`` over 2,000 open referrals in the read model of a real
API and worker (SQLite in a temp folder), each against the bare ``SELECT`` of the same rows on the same store,
alternating request by request in the same run.

The waiting referrals (received, screening) are real: submitted through ``POST /fhir``, their rows written by
their workflows. The rest are rows seeded in treatment (teams from the program's roster, deadlines, a few at
risk). A second inbox round turns more seeded rows into waiting ones (a newer row version), to show what the
inbox pays per waiting referral. The API's Temporal client counts the workflow queries the pages send: none.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, select

from bench.intake import distribution
from bench.read_model import newest_database
from bench.servers import Servers
from referral_service.api.dashboard.people import LIST_LIMIT as CASELOAD_LIMIT
from referral_service.domain.lifecycle import DECIDABLE, OPEN_IN_ORDER
from referral_service.domain.program import Program
from referral_service.domain.referral_row import ReferralRow, RowPerson, RowVersion
from referral_service.programs import load_program
from referral_service.store.database import open_database, sqlite_url
from referral_service.store.referrals import ReferralRows, RowQuery
from referral_service.store.tables import referrals
from referral_service.temporal_client.key_ring_secrets import referral_rows
from tests.api_driver import Api
from tests.api_server import running_api
from tests.query_counter import counting_client

GOAL = "p95 <= 300 ms, 0 workflow queries"
SUBMIT_CONCURRENCY = 4


def treatment_rows(count: int, program: Program) -> list[ReferralRow]:
    """``count`` referrals in treatment on the program's tracks, each with a team from its roster."""
    chance = random.Random(16)  # noqa: S311 - bench data, not a secret
    now = datetime.now(UTC)
    by_role: dict[str, list[str]] = {}
    for member in program.roster:
        by_role.setdefault(member.role.value, []).append(member.id)
    tracks = [track.id for track in program.tracks]
    rows = []
    for n in range(count):
        received = now - timedelta(days=chance.randrange(5, 120), minutes=n)
        rows.append(
            ReferralRow(
                key=f"hapi-local.BENCH-OPEN-{n}.{uuid.uuid4().hex[:8]}",
                version=RowVersion(at=received, event=10),
                source_id="hapi-local",
                phase="in_treatment",
                ended=False,
                track_id=tracks[n % len(tracks)],
                referrer="Bench General Hospital",
                received_at=received,
                hospital_discharge=received.date() - timedelta(days=1),
                accepted_on=received.date() + timedelta(days=1),
                sessions_attended=chance.randrange(20),
                team={role: chance.choice(ids) for role, ids in by_role.items()},
                next_deadline=now + timedelta(hours=chance.randrange(-48, 24 * 14)),
                at_risk=chance.random() < 0.1,
                person=RowPerson(family="Benchpatient", given=[f"P{n}"], gender="female", mrn=f"MRN{n}"),
            )
        )
    return rows


def bare_select(engine: Engine, phases: Sequence[str]) -> int:
    """The rows a page lists, as the page's query asks for them, without unsealing or rendering."""
    c = referrals.c
    statement = (
        select(referrals)
        .where(c.ended.is_(False), c.phase.in_(phases))
        .order_by(c.received_at.desc(), c.key)
        .limit(CASELOAD_LIMIT)
    )
    with engine.connect() as db:
        return len(db.execute(statement).all())


async def page_against_bare(
    http: httpx.AsyncClient, engine: Engine, path: str, phases: Sequence[str], requests: int
) -> dict[str, Any]:
    ours: list[float] = []
    bare: list[float] = []
    await http.get(path)  # unmeasured: the first load compiles the page's template
    for _ in range(requests):
        t0 = time.perf_counter()
        answer = await http.get(path)
        ours.append(time.perf_counter() - t0)
        assert answer.status_code == 200, answer.text[:300]
        assert "service database is unavailable" not in answer.text, f"{path}: the read model was not read"
        t0 = time.perf_counter()
        rows = bare_select(engine, phases)
        bare.append(time.perf_counter() - t0)
    page, raw = distribution(ours), distribution(bare)
    return {
        "page": page,
        "bare_select": raw,
        "rows_listed": rows,
        "p50_ratio": page["p50_ms"] / raw["p50_ms"],
        "p95_ratio": page["p95_ms"] / raw["p95_ms"],
    }


async def until_waiting(rows: ReferralRows, keys: set[str]) -> None:
    """Until every submitted referral's own row (written by its workflow) is on the inbox's list."""
    phases = tuple(phase.value for phase in DECIDABLE)
    deadline = time.monotonic() + 120
    while True:
        found = await rows.find(RowQuery(open_only=True, phases=phases, limit=CASELOAD_LIMIT))
        if keys <= {stored.row.key for stored in found}:
            return
        assert time.monotonic() < deadline, "the submitted referrals' rows never showed as waiting"
        await asyncio.sleep(0.2)


async def measure(servers: Servers, open_count: int, waiting: int, more: int, requests: int) -> dict[str, Any]:
    client, counter = counting_client(servers.temporal.client)
    prefix = f"bench-p6p-{uuid.uuid4().hex[:4]}"
    program = load_program()
    async with (
        running_api(servers.temporal, servers.hapi_base_url, servers.hapi, queue_prefix=prefix, client=client) as url,
        httpx.AsyncClient(base_url=url, timeout=120) as http,
    ):
        engine = open_database(sqlite_url(newest_database(prefix)))
        rows = referral_rows(client, engine)
        api, gate = Api(http), asyncio.Semaphore(SUBMIT_CONCURRENCY)

        async def submit() -> str:
            async with gate:
                return await api.submit()

        began = time.perf_counter()
        keys = set(await asyncio.gather(*(submit() for _ in range(waiting))))
        await until_waiting(rows, keys)
        seeded = treatment_rows(open_count - waiting, program)
        for row in seeded:
            await rows.upsert(row)
        seeding_s = time.perf_counter() - began
        print(f"  pages: {waiting} waiting, {len(seeded):,} in treatment", file=sys.stderr, flush=True)
        inbox_phases = [phase.value for phase in DECIDABLE]
        queries_before = counter.queries
        caseload = await page_against_bare(
            http, engine, "/caseload", [phase.value for phase in OPEN_IN_ORDER], requests
        )
        inbox = await page_against_bare(http, engine, "/inbox", inbox_phases, requests)
        # More waiting: seeded rows turned screening (a newer version); the open count is unchanged.
        for row in seeded[:more]:
            later = RowVersion(at=row.version.at + timedelta(seconds=1), event=row.version.event + 1)
            await rows.upsert(row.model_copy(update={"phase": "screening", "version": later}))
        more_waiting = await page_against_bare(http, engine, "/inbox", inbox_phases, requests)
        queries = counter.queries - queries_before
        for key in keys:
            await servers.temporal.client.get_workflow_handle(key).terminate("bench ended")
        engine.dispose()
    return {
        "open": open_count,
        "waiting": waiting,
        "more": more,
        "requests": requests,
        "seeding_s": seeding_s,
        "caseload": caseload,
        "inbox": inbox,
        "inbox_more_waiting": more_waiting,
        "workflow_queries": queries,
        "goal": GOAL,
    }


def print_table(result: dict[str, Any]) -> None:
    waiting, more = result["waiting"], result["more"]
    print(
        f"\nP6 pages over {result['open']:,} open referrals ({waiting} waiting, real workflows), "
        f"{result['requests']} loads each; seeding {result['seeding_s']:.0f} s"
    )
    print(f"{'':<40} {'rows':>6} {'p50 ms':>8} {'p95 ms':>8} {'bare p50':>9} {'bare p95':>9} {'p95 ratio':>10}")
    sides = (
        ("GET /caseload", result["caseload"]),
        ("GET /inbox", result["inbox"]),
        (f"GET /inbox (+{more} waiting rows)", result["inbox_more_waiting"]),
    )
    for name, side in sides:
        page, raw = side["page"], side["bare_select"]
        print(
            f"{name:<40} {side['rows_listed']:>6} {page['p50_ms']:>8.1f} {page['p95_ms']:>8.1f} "
            f"{raw['p50_ms']:>9.1f} {raw['p95_ms']:>9.1f} {side['p95_ratio']:>9.2f}x"
        )
    print(f"workflow queries issued by the pages: {result['workflow_queries']}")
    print(f"goal {result['goal']}")
