"""The audit trail: who did what to which referral, read back by a program admin through ``GET /api/audit``.

The real app with bearer tokens (``tests/auth_tokens.py``), a real worker on the Temporal dev server, the HAPI
test server as the referring EHR, and the trail's own SQLite file under the test's folder.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment

from referral_service.api.app import create_app
from referral_service.config import Settings
from referral_service.ehr.client import FhirClient
from referral_service.worker import create_worker
from tests.api_driver import ADA, Api
from tests.api_server import service_settings
from tests.auth_tokens import auth_settings, token
from tests.conftest import HAPI_SOURCE_ID
from tests.program_day import program_today
from tests.referrals import PATIENT_DATA, referral_bundle

FHIR_JSON = {"Content-Type": "application/fhir+json"}
DISCHARGE = "POST /api/referrals/{key}/discharge"
HOSPITAL = token("referring-system", source=HAPI_SOURCE_ID, sub="st-marys-ehr")
COORDINATOR = token("intake-coordinator", sub="coordinator-kim")
CLINICIAN = token("clinician", sub="dr-lee")
ADMIN = token("program-admin", sub="admin-ray")

Client = Callable[[dict[str, str]], httpx.AsyncClient]


@pytest.fixture
def settings(tmp_path: Path, hapi_base_url: str) -> Settings:
    base = service_settings(hapi_base_url, "audit")
    database = SecretStr(f"sqlite:///{tmp_path / 'service.sqlite'}")
    return base.model_copy(update={"auth": auth_settings(tmp_path), "database_url": database})


@pytest.fixture
async def app(settings: Settings, temporal_env: WorkflowEnvironment, hapi_client: FhirClient) -> AsyncIterator[FastAPI]:
    """The app (lifespan included) with a worker on its task queue, writing to HAPI."""
    app = create_app(settings, temporal_env.client)
    async with (
        app.router.lifespan_context(app),
        create_worker(
            temporal_env.client, settings.task_queue, {HAPI_SOURCE_ID: hapi_client}, database=app.state.database
        ),
    ):
        yield app


@pytest.fixture
async def as_user(app: FastAPI) -> AsyncIterator[Client]:
    """An HTTP client sending one caller's token with every request."""
    clients: list[httpx.AsyncClient] = []

    def client(headers: dict[str, str]) -> httpx.AsyncClient:
        clients.append(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers)
        )
        return clients[-1]

    yield client
    for opened in clients:
        await opened.aclose()


async def _audit(as_user: Client, **filters: Any) -> list[dict[str, Any]]:
    response = await as_user(ADMIN).get("/api/audit", params=filters)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def _steps(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a reviewer reads in each row, oldest first."""
    return [(r["user"], r["action"], r["referral_key"], r["status"], r["outcome"]) for r in reversed(rows)]


async def _intake_scheduled(clinician: Api, key: str) -> None:
    await clinician.snapshot_until(key, lambda s: s["phase"] == "intake_scheduled", "intake scheduled")


async def test_who_did_what_to_a_referral_is_recorded_without_patient_data(
    as_user: Client, settings: Settings, tmp_path: Path
):
    """The hospital's intake, the coordinator's decision, reads, the coordinator's refused discharge and the
    clinician's discharge are each one row naming the user, the route, the referral and the outcome; the rows,
    the database file and the log events hold no patient name, MRN or birth date."""
    with capture_logs() as logs:
        submitted = await as_user(HOSPITAL).post("/fhir", json=referral_bundle(ADA), headers=FHIR_JSON)
        assert submitted.status_code == 201, submitted.text
        key = submitted.json()["id"]
        coordinator, clinician = Api(as_user(COORDINATOR)), Api(as_user(CLINICIAN))
        await coordinator.accept(key, "adult-mh")
        await _intake_scheduled(clinician, key)
        refused = await coordinator.http.post(f"/api/referrals/{key}/discharge", json=_discharge())
        discharged = await clinician.http.post(f"/api/referrals/{key}/discharge", json=_discharge())
        rows = await _audit(as_user, referral=key)

    assert refused.status_code == 403, refused.text
    assert discharged.status_code == 200, discharged.text
    steps = _steps(rows)
    reads = [s for s in steps if s[1] == "GET /api/referrals/{key}"]
    assert ("dr-lee", "GET /api/referrals/{key}", key, 200, "ok") in reads
    assert {s[:3] for s in reads} == {("dr-lee", "GET /api/referrals/{key}", key)}
    assert [s for s in steps if s not in reads] == [
        ("st-marys-ehr", "POST /fhir", key, 201, "ok"),
        ("coordinator-kim", "POST /api/referrals/{key}/decision", key, 200, "ok"),
        ("coordinator-kim", DISCHARGE, key, 403, "forbidden"),
        ("dr-lee", DISCHARGE, key, 200, "ok"),
    ]
    assert rows[-1]["roles"] == ["referring-system"]
    assert rows[-1]["source"] == HAPI_SOURCE_ID
    assert rows[0]["roles"] == ["clinician"]
    assert [r["at"] for r in rows] == sorted((r["at"] for r in rows), reverse=True)
    assert datetime.fromisoformat(rows[0]["at"]) > datetime.now(UTC) - timedelta(minutes=5)

    audit_events = [e for e in logs if e["event"] == "audit" and e["referral_key"] == key]
    assert {(e["user"], e["action"], e["status"], e["outcome"]) for e in audit_events} == {
        (r["user"], r["action"], r["status"], r["outcome"]) for r in rows
    }
    stored = _database_bytes(tmp_path)
    assert key.encode() in stored
    for text in (str(rows), str(logs)):
        assert [word for word in PATIENT_DATA if word in text] == []
    assert [word for word in PATIENT_DATA if word.encode() in stored] == []


async def test_filters_narrow_the_trail_by_user_action_and_time(as_user: Client):
    """A refusal without a token is recorded with no user; filters by user, action and time each narrow it."""
    before = datetime.now(UTC)
    unknown = "hapi-test.unknown.0000000000"
    anonymous = await as_user({}).get(f"/api/referrals/{unknown}")
    refused = await as_user(COORDINATOR).post(f"/api/referrals/{unknown}/discharge", json=_discharge())
    assert (anonymous.status_code, refused.status_code) == (401, 403)

    recent = _steps(await _audit(as_user, since=before.isoformat()))
    mine = _steps(await _audit(as_user, user="coordinator-kim", action=DISCHARGE, since=before.isoformat()))
    later = await _audit(as_user, since=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    one = await _audit(as_user, limit=1)
    out_of_range = await as_user(ADMIN).get("/api/audit", params={"since": "0001-01-01T00:00:00+14:00"})

    assert recent[:2] == [
        (None, "GET /api/referrals/{key}", unknown, 401, "unauthenticated"),
        ("coordinator-kim", DISCHARGE, unknown, 403, "forbidden"),
    ]
    assert mine == [("coordinator-kim", DISCHARGE, unknown, 403, "forbidden")]
    assert later == []
    assert out_of_range.status_code == 422, out_of_range.text
    assert one[0]["action"] == "GET /api/audit"  # reading the trail is itself on it


async def test_only_program_admins_read_the_trail(as_user: Client):
    for role in ("clinician", "case-manager", "intake-coordinator"):
        response = await as_user(token(role)).get("/api/audit")
        assert response.status_code == 403, role
    denied = await _audit(as_user, user="user-1", action="GET /api/audit")
    assert {r["outcome"] for r in denied} == {"forbidden"}
    assert len(denied) == 3


async def test_requests_at_once_each_get_their_row(as_user: Client):
    """Twenty reads at once (the writer thread batches them): twenty rows, each naming its referral."""
    keys = [f"hapi-test.unknown-{n}.0000000000" for n in range(20)]
    answers = await asyncio.gather(*(as_user(CLINICIAN).get(f"/api/referrals/{key}") for key in keys))
    assert {a.status_code for a in answers} == {404}
    rows = await _audit(as_user, user="dr-lee", action="GET /api/referrals/{key}")
    assert sorted(r["referral_key"] for r in rows) == sorted(keys)
    assert {r["outcome"] for r in rows} == {"not-found"}


def _discharge() -> dict[str, Any]:
    return {"discharge": {"reason": "dropped_out", "date": program_today().isoformat()}}


async def test_the_dashboard_page_shows_the_trail_to_program_admins_only(as_user: Client):
    """``/audit``: the filtered rows for an admin, linked from the menu only for admins; others get 403."""
    unknown = "hapi-test.unknown.1111111111"
    await as_user(CLINICIAN).get(f"/api/referrals/{unknown}")

    page = await as_user(ADMIN).get("/audit", params={"referral": unknown})
    bad_since = await as_user(ADMIN).get("/audit", params={"since": "yesterday"})
    coordinator = await as_user(COORDINATOR).get("/audit")
    coordinator_inbox = await as_user(COORDINATOR).get("/inbox")
    admin_inbox = await as_user(ADMIN).get("/inbox")

    assert page.status_code == 200, page.text
    assert f'data-user="dr-lee" data-action="GET /api/referrals/{{key}}" data-referral="{unknown}"' in page.text
    assert 'data-status="404" data-outcome="not-found"' in page.text
    assert page.text.count("<tr data-user=") == 1
    assert bad_since.status_code == 400
    assert "since must be a date and time" in bad_since.text
    assert coordinator.status_code == 403
    assert 'href="/audit"' not in coordinator_inbox.text
    assert 'href="/audit"' in admin_inbox.text


async def test_a_group_roster_is_one_row_per_referral(as_user: Client):
    """The roster names its referrals in the body: each gets its own row, with the roster's outcome."""
    keys = ["hapi-test.roster-a.0000000000", "hapi-test.roster-b.0000000000"]
    roster = {
        "date": program_today().isoformat(),
        "minutes": 180,
        "entries": [{"referral_id": key, "status": "attended"} for key in keys],
    }
    answer = await as_user(CLINICIAN).post("/api/groups/adult-mh-group/sessions", json=roster)

    assert answer.status_code == 207, answer.text  # neither referral exists
    action = "POST /api/groups/{group}/sessions"
    rows = await _audit(as_user, action=action)
    assert sorted(_steps(rows)) == [("dr-lee", action, key, 207, "partial") for key in keys]


def _database_bytes(folder: Path) -> bytes:
    """The service database's file and its companions; SQLite removes its -wal file when the last connection
    closes, so one listed a moment ago may be gone."""
    return b"".join(_bytes_if_there(path) for path in folder.glob("service.sqlite*"))


def _bytes_if_there(path):
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
