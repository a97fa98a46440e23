"""Read model (P6): ``GET /api/measures`` over a year of referrals seeded into the read model of a real API
(SQLite in a temp folder), against the bare ``SELECT measures ... WHERE hospital_discharge BETWEEN`` on the
same store, alternating request by request in the same run; the workflow queries the API issued meanwhile
(counted by its Temporal client: must be 0). Then the read model's lag: an attended-session update answered
by the API until the referral's row shows it, on real workflows with a real worker.
"""

from __future__ import annotations

import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from bench.intake import distribution
from bench.servers import Servers
from referral_service.domain.discharge import DischargeReason
from referral_service.domain.measures import FollowUpResult, MeasureFacts
from referral_service.domain.referral_row import ReferralRow, RowPerson, RowVersion
from referral_service.store.database import open_database, sqlite_url
from referral_service.store.referrals import ReferralRows
from referral_service.store.tables import referrals
from referral_service.temporal_client.key_ring_secrets import referral_rows
from tests.api_driver import Api
from tests.api_server import AUDIT_DIR, running_api
from tests.query_counter import counting_client

YEAR_END = date(2026, 11, 30)
TRACKS = ("adult-mh", "adolescent", "sud")
GOAL = "p95 <= 500 ms, 0 workflow queries"
LAG_GOAL = "p95 <= 1 s"


def year_of_rows(count: int) -> list[ReferralRow]:
    """``count`` accepted referrals discharged from hospital over a year, a third of them closed."""
    chance = random.Random(6)  # noqa: S311 - bench data, not a secret
    rows = []
    for n in range(count):
        discharged = YEAR_END - timedelta(days=chance.randrange(365))
        first = discharged + timedelta(days=chance.randrange(1, 40)) if chance.random() < 0.8 else None
        closed = n % 3 == 0
        facts = MeasureFacts(
            track_id=TRACKS[n % len(TRACKS)],
            source_id="hapi-local",
            hospital_discharge=discharged,
            first_qualifying_visit=first,
            first_attended=first,
            weeks_met=chance.randrange(8),
            weeks=8,
            discharge_reason=chance.choice(list(DischargeReason)) if closed else None,
            follow_ups=[FollowUpResult(due=discharged + timedelta(days=60), reached=chance.random() < 0.7)]
            if closed
            else [],
        )
        received = datetime.combine(discharged, datetime.min.time(), UTC) - timedelta(days=2)
        rows.append(
            ReferralRow(
                key=f"hapi-local.BENCH-{n}.{uuid.uuid4().hex[:8]}",
                version=RowVersion(at=received, event=10),
                source_id="hapi-local",
                phase="closed" if closed else "in_treatment",
                ended=closed,
                track_id=facts.track_id,
                received_at=received,
                hospital_discharge=discharged,
                measures=facts,
                person=RowPerson(family="Benchpatient", given=[f"P{n}"]),
            )
        )
    return rows


def newest_database(prefix: str) -> Path:
    """The SQLite file ``running_api`` gave the API queued under ``prefix`` (named after its task queue)."""
    return max(AUDIT_DIR.glob(f"{prefix}-*.sqlite"), key=lambda p: p.stat().st_mtime)


def bare_select(engine: Engine, start: date, end: date) -> int:
    c = referrals.c
    with engine.connect() as db:
        return len(db.execute(select(c.measures).where(c.hospital_discharge.between(start, end))).all())


async def measure(servers: Servers, count: int, requests: int, lag_samples: int) -> dict[str, Any]:
    client, counter = counting_client(servers.temporal.client)
    prefix = f"bench-p6-{uuid.uuid4().hex[:4]}"
    period = {"from": (YEAR_END - timedelta(days=364)).isoformat(), "to": YEAR_END.isoformat()}
    async with (
        running_api(servers.temporal, servers.hapi_base_url, servers.hapi, queue_prefix=prefix, client=client) as url,
        httpx.AsyncClient(base_url=url, timeout=120) as http,
    ):
        engine = open_database(sqlite_url(newest_database(prefix)))
        rows = referral_rows(client, engine)
        began = time.perf_counter()
        for n, row in enumerate(year_of_rows(count)):
            await rows.upsert(row)
            if n % 2000 == 0:
                print(f"  read model: {n:,}/{count:,} rows seeded", file=sys.stderr, flush=True)
        seeding_s = time.perf_counter() - began
        through_api: list[float] = []
        bare: list[float] = []
        queries_before = counter.queries
        start, end = date.fromisoformat(period["from"]), YEAR_END
        for _ in range(requests):
            t0 = time.perf_counter()
            answer = await http.get("/api/measures", params=period)
            through_api.append(time.perf_counter() - t0)
            assert answer.status_code == 200, answer.text[:300]
            t0 = time.perf_counter()
            found = bare_select(engine, start, end)
            bare.append(time.perf_counter() - t0)
        queries = counter.queries - queries_before
        report = answer.json()
        lags = await read_model_lag(Api(http), rows, lag_samples)
        engine.dispose()
    ours, raw = distribution(through_api), distribution(bare)
    return {
        "referrals": count,
        "in_period": report["overall"]["referrals"],
        "bare_rows": found,
        "requests": requests,
        "seeding_s": seeding_s,
        "api_measures": ours,
        "bare_select": raw,
        "p50_ratio": ours["p50_ms"] / raw["p50_ms"],
        "p95_ratio": ours["p95_ms"] / raw["p95_ms"],
        "workflow_queries": queries,
        "goal": GOAL,
        "lag": distribution(lags),
        "lag_samples": len(lags),
        "lag_goal": LAG_GOAL,
    }


async def read_model_lag(api: Api, rows: ReferralRows, samples: int) -> list[float]:
    """Seconds from an attended-session update answered by the API to the row counting that session."""
    key = await api.submit()
    await api.accept(key, "adult-mh")
    today = datetime.now(UTC).date()
    lags = []
    for n in range(samples):
        session = {"session_id": f"lag-{n}", "date": today.isoformat(), "kind": "group", "minutes": 15}
        session["attended"] = True
        answer = await api.http.post(f"/api/referrals/{key}/sessions", json={"session": session})
        assert answer.status_code == 200, answer.text[:300]
        answered = time.perf_counter()
        while True:
            stored = await rows.get(key)
            if stored is not None and stored.row.sessions_attended >= n + 1:
                break
            if time.perf_counter() - answered > 30:
                raise AssertionError("the row never showed the session")
        lags.append(time.perf_counter() - answered)
    return lags


def print_table(result: dict[str, Any]) -> None:
    api, raw, lag = result["api_measures"], result["bare_select"], result["lag"]
    print(
        f"\nP6 read model: GET /api/measures over {result['referrals']:,} referrals "
        f"({result['in_period']:,} in the year asked), {result['requests']} requests; "
        f"seeding {result['seeding_s']:.0f} s"
    )
    print(f"{'':<26} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'GET /api/measures':<26} {api['p50_ms']:>8.1f} {api['p95_ms']:>8.1f}")
    print(f"{'bare SELECT measures':<26} {raw['p50_ms']:>8.1f} {raw['p95_ms']:>8.1f}")
    print(f"{'ratio':<26} {result['p50_ratio']:>7.2f}x {result['p95_ratio']:>7.2f}x   goal {result['goal']}")
    print(f"workflow queries issued by the API meanwhile: {result['workflow_queries']}")
    print(
        f"read-model lag (update answered to row visible, {result['lag_samples']} updates): "
        f"p50 {lag['p50_ms']:.0f} ms, p95 {lag['p95_ms']:.0f} ms   goal {result['lag_goal']}"
    )
