"""The case-manager API (``/api/referrals``), driven in-process over HTTP against real servers only.

A real worker runs the real workflow and activities; every claim about the EHR is checked by reading the
HAPI FHIR server back. The whole-program test runs on the time-skipping Temporal server (twelve weeks take
seconds); the list test runs on the dev server, because only that one answers visibility queries.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from referral_service.api.app import create_app
from referral_service.codec import KeyRing
from referral_service.config import Settings
from referral_service.domain.referral import Identifier, referral_key
from referral_service.ehr.client import FhirClient
from referral_service.replay.clock import skip_time
from referral_service.worker import create_worker
from tests.api_server import service_settings
from tests.conftest import HAPI_SOURCE_ID, time_skipping_server
from tests.program_day import program_today
from tests.referrals import referral_bundle

ADA = "ada-testpatient-adult-inpatient"
ADA_LEFT_HOSPITAL = date(2026, 11, 20)  # the hospital discharge in Ada's fixture; no session may be earlier
FHIR_JSON = {"Content-Type": "application/fhir+json"}
OTHER_SOURCE_ID = "hapi-test-2"  # a second referring EHR (the same HAPI server) for the source filter

WEEKS = 12
SESSION_DAYS = (0, 2, 4)  # three group sessions a week, two days apart, from the first session's weekday
SESSION_MINUTES = 180  # 3 x 3 h = 9 h a week, the adult minimum
MISSED = frozenset({(2, 1), (6, 0), (9, 2)})  # (week, slot): three missed sessions, never two in a row
SETTLE_PATIENCE_S = 60.0
SEED_TIMEOUT_S = 180.0


# ---- fixtures ----------------------------------------------------------------------------------------


@asynccontextmanager
async def _serving(client: Client, settings: Settings, hapi_client: FhirClient) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process (lifespan included) and a real worker on its task queue, writing to HAPI."""
    app = create_app(settings, client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as api,
        create_worker(
            client,
            settings.task_queue,
            {source.id: hapi_client for source in settings.sources},
            database=app.state.database,
        ),
    ):
        yield api


@pytest_asyncio.fixture(scope="module")
async def time_skipping_env(key_ring: KeyRing) -> AsyncIterator[WorkflowEnvironment]:
    """This module's own time-skipping server: its 12-week program skips months of virtual time, which any
    referral another module left waiting on the shared server would stall."""
    async with time_skipping_server(key_ring) as env:
        yield env


@pytest.fixture
async def skipping_api(time_skipping_env, hapi_client, hapi_base_url) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the time-skipping server, one referring EHR (HAPI)."""
    async with _serving(time_skipping_env.client, service_settings(hapi_base_url, "case-manager"), hapi_client) as api:
        yield api


@pytest.fixture
async def hapi_http(hapi_base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Plain HTTP to HAPI, for what ``FhirClient`` has no method for (``_history``)."""
    async with httpx.AsyncClient(base_url=hapi_base_url + "/", headers={"Cache-Control": "no-cache"}) as http:
        yield http


# ---- helpers -----------------------------------------------------------------------------------------


def _key(bundle: dict[str, Any], source_id: str = HAPI_SOURCE_ID) -> str:
    """The referral id the service gives this Bundle's referral."""
    [service_request] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest"]
    placer = service_request["identifier"][0]
    return referral_key(source_id, Identifier(system=placer["system"], value=placer["value"]))


async def _submit(api: httpx.AsyncClient, bundle: dict[str, Any], source_id: str | None = None) -> httpx.Response:
    headers = {**FHIR_JSON, **({"X-Referral-Source": source_id} if source_id else {})}
    return await api.post("/fhir", content=json.dumps(bundle).encode(), headers=headers)


async def _seed(hapi_http: httpx.AsyncClient, bundle: dict[str, Any]) -> dict[str, str]:
    """Write the Bundle to HAPI as the hospital's EHR holds it; ``Type/id`` of each resource type.

    Patient: a fresh HAPI's first validated write can take longer than the worker's 30 s EHR timeout."""
    response = await hapi_http.post("", json=bundle, headers=FHIR_JSON, timeout=SEED_TIMEOUT_S)
    response.raise_for_status()
    locations = [entry["response"]["location"].split("/") for entry in response.json()["entry"]]
    return {parts[0]: f"{parts[0]}/{parts[1]}" for parts in locations}


async def _hapi_last_change(hapi_http: httpx.AsyncClient) -> str:
    """HAPI's newest resource version (system history, newest first): any create, update or delete
    changes it. (History totals will not do: HAPI caches them for a minute.)"""
    response = await hapi_http.get("_history", params={"_count": "1"})
    response.raise_for_status()
    [entry] = response.json()["entry"]
    meta = entry["resource"]["meta"]
    return f"{entry['fullUrl']}/_history/{meta['versionId']} at {meta['lastUpdated']}"


async def _describe(client: Client, key: str) -> Any:
    """The raw description (the SDK's own decoding trips on an unset Datetime search attribute there)."""
    return await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace=client.namespace, execution=WorkflowExecution(workflow_id=key))
    )


async def _settled(client: Client, key: str, hapi_http: httpx.AsyncClient) -> str:
    """Wait until the referral has nothing in flight (no activity, no workflow task, its history and HAPI
    both unchanged over three reads); return HAPI's newest change then."""
    deadline = time.monotonic() + SETTLE_PATIENCE_S
    last: tuple[Any, ...] | None = None
    steady = 0
    while True:
        raw = await _describe(client, key)
        seen = (
            raw.workflow_execution_info.status,
            raw.workflow_execution_info.history_length,
            len(raw.pending_activities),
            raw.HasField("pending_workflow_task"),
            await _hapi_last_change(hapi_http),
        )
        idle = seen[2] == 0 and not seen[3]
        steady = steady + 1 if idle and seen == last else 0
        if steady >= 2:
            return str(seen[-1])
        if time.monotonic() > deadline:
            raise AssertionError(f"{key} still busy after {SETTLE_PATIENCE_S:.0f}s: {seen}")
        last = seen
        await asyncio.sleep(0.1)


class Twice:
    """Sends every request twice, as a client retrying after a lost answer would, and checks the second
    left HAPI exactly as the first had (once the first's effects have all landed)."""

    def __init__(self, client: Client, hapi_http: httpx.AsyncClient) -> None:
        self.client = client
        self.hapi_http = hapi_http

    async def __call__(
        self, key: str, send: Callable[[], Awaitable[httpx.Response]]
    ) -> tuple[httpx.Response, httpx.Response]:
        first = await send()
        before = await _settled(self.client, key, self.hapi_http)
        again = await send()
        after = await _settled(self.client, key, self.hapi_http)
        request = first.request
        assert after == before, f"sending {request.method} {request.url.path} again changed HAPI: {before} -> {after}"
        return first, again


async def _advance_to(env: WorkflowEnvironment, moment: datetime) -> None:
    """Move the time-skipping server's clock forward to ``moment`` (timers due on the way fire)."""
    now = await env.get_current_time()
    if moment > now:
        await skip_time(env.client, moment - now)


async def _written(hapi_client: FhirClient, resource_type: str, key: str) -> list[dict[str, Any]]:
    """What the service wrote under one resource key (its business identifier)."""
    return await hapi_client.search(resource_type, {"identifier": f"{RESOURCE_KEY_SYSTEM}|{key}"})


class Resolver:
    """``Type/id`` in HAPI of a reference, literal or logical (by identifier: exactly one must match)."""

    def __init__(self, hapi_client: FhirClient) -> None:
        self.hapi_client = hapi_client
        self._known: dict[str, str] = {}

    async def __call__(self, reference: dict[str, Any]) -> str:
        if "reference" in reference:
            return str(reference["reference"])
        cache_key = json.dumps(reference, sort_keys=True)
        if cache_key not in self._known:
            identifier = reference["identifier"]
            query = {"identifier": f"{identifier['system']}|{identifier['value']}"}
            matches = await self.hapi_client.search(reference["type"], query)
            assert len(matches) == 1, f"{reference} matches {len(matches)} resources in HAPI"
            self._known[cache_key] = f"{reference['type']}/{matches[0]['id']}"
        return self._known[cache_key]


def _versions(state: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """Each EHR write of a snapshot: resource type, id and version."""
    return {key: (w["resource_type"], w["id"], w["version"]) for key, w in state["writes"].items()}


def _json_error(response: httpx.Response, status: int) -> str:
    """The message of a JSON error answer with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert detail
    return detail


async def _phase_reached(api: httpx.AsyncClient, key: str, phase: str, patience_s: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + patience_s
    while True:
        response = await api.get(f"/api/referrals/{key}")
        if response.status_code == 200 and response.json()["phase"] == phase:
            state: dict[str, Any] = response.json()
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"{key} never reached {phase}: {response.status_code} {response.text[:200]}")
        await asyncio.sleep(0.1)


# ---- a whole program through the API -----------------------------------------------------------------


async def test_twelve_week_program_through_the_api_writes_each_resource_once(
    skipping_api, time_skipping_env, hapi_client, hapi_http, program
):
    """Intake, accept into adult-mh, 12 weeks x 3 group sessions of 3 h (three missed), discharge completed,
    follow-ups on day 7 and day 30: every request sent twice, driven only through the HTTP API.

    What a repeat answers (and in every case it leaves HAPI with exactly the resource versions it had):

    - ``POST /fhir``: 200 with the same Task as the 201 (the referral is started once).
    - ``decision``: 409 "no screening decision is possible in phase intake_scheduled" (already applied).
    - ``sessions``: 200 with the same state; the session is replaced by its id and its Encounter rewritten
      unchanged, which makes no new version in HAPI.
    - ``discharge``: 409 "this referral was already discharged (completed, <date>); it is in phase aftercare".
    - ``follow-ups`` day 7: 200, the checkpoint recorded again with the same result.
    - ``follow-ups`` day 30: the first closes the referral, so the repeat is 409 "this referral has ended
      (phase closed) and takes no more changes".
    - ``GET``: the same snapshot.
    """
    env = time_skipping_env
    twice = Twice(env.client, hapi_http)
    bundle = referral_bundle(ADA)
    key = _key(bundle)
    seeded = await _seed(hapi_http, bundle)  # the hospital's EHR holds the patient and the order
    started = time.monotonic()

    created, resent = await twice(key, lambda: _submit(skipping_api, bundle))
    assert (created.status_code, resent.status_code) == (201, 200), resent.text
    assert created.json()["id"] == resent.json()["id"] == key

    accept = {"decision": "accept", "track_id": "adult-mh"}
    accepted, reaccepted = await twice(key, lambda: skipping_api.post(f"/api/referrals/{key}/decision", json=accept))
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["phase"], accepted.json()["track_id"]) == ("intake_scheduled", "adult-mh")
    assert "in phase intake_scheduled" in _json_error(reaccepted, 409)

    first_day = (await env.get_current_time()).date()
    assert first_day >= ADA_LEFT_HOSPITAL
    sessions: list[dict[str, Any]] = []
    for week in range(WEEKS):
        for slot, offset in enumerate(SESSION_DAYS):
            day = first_day + timedelta(weeks=week, days=offset)
            await _advance_to(env, datetime.combine(day, clock(12, 5), UTC))  # just after the session
            session = {
                "session_id": f"w{week + 1:02d}-s{slot + 1}",
                "date": day.isoformat(),
                "kind": "group",
                "minutes": SESSION_MINUTES,
                "attended": (week, slot) not in MISSED,
            }
            sessions.append(session)
            recorded, rerecorded = await twice(
                key, lambda s=session: skipping_api.post(f"/api/referrals/{key}/sessions", json={"session": s})
            )
            assert (recorded.status_code, rerecorded.status_code) == (200, 200), rerecorded.text
            assert recorded.json()["phase"] == "in_treatment"
            assert rerecorded.json()["sessions"] == recorded.json()["sessions"]
            # The same resources at the same versions (the repeat's write found the Encounter: created false).
            assert _versions(rerecorded.json()) == _versions(recorded.json())
    attended = [s["session_id"] for s in sessions if s["attended"]]
    missed = [s["session_id"] for s in sessions if not s["attended"]]
    assert (len(sessions), len(attended)) == (WEEKS * len(SESSION_DAYS), WEEKS * len(SESSION_DAYS) - len(MISSED))

    last_day = date.fromisoformat(sessions[-1]["date"])
    discharge = {"discharge": {"reason": "completed", "date": last_day.isoformat()}}
    discharged, redischarged = await twice(
        key, lambda: skipping_api.post(f"/api/referrals/{key}/discharge", json=discharge)
    )
    assert discharged.status_code == 200, discharged.text
    assert discharged.json()["discharge"]["reason"] == "completed"
    message = _json_error(redischarged, 409)
    assert "already discharged" in message
    assert "in phase aftercare" in message

    for day in (7, 30):
        await _advance_to(env, datetime.combine(last_day + timedelta(days=day), clock(12), UTC))
        follow_up = {"day": day, "reached": True, "note": "doing well"}
        reached, rereached = await twice(
            key, lambda f=follow_up: skipping_api.post(f"/api/referrals/{key}/follow-ups", json=f)
        )
        assert reached.status_code == 200, reached.text
        checkpoint = next(f for f in reached.json()["follow_ups"] if f["day"] == day)
        assert checkpoint["reached"] is True
        if day == 7:
            assert rereached.status_code == 200, rereached.text
            assert rereached.json()["follow_ups"] == reached.json()["follow_ups"]
        else:
            assert "has ended (phase closed)" in _json_error(rereached, 409)
    raw = await _describe(env.client, key)
    assert raw.workflow_execution_info.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED

    read, reread = await twice(key, lambda: skipping_api.get(f"/api/referrals/{key}"))
    assert (read.status_code, reread.status_code) == (200, 200), read.text
    state = read.json()
    assert reread.json() == state
    elapsed = time.monotonic() - started
    print(f"\n12-week program through the API: {elapsed:.1f}s wall time")  # the figure to report

    # ---- the snapshot ----
    assert (state["phase"], state["track_id"], state["task_status"]) == ("closed", "adult-mh", "completed")
    assert [f["reached"] for f in state["follow_ups"]] == [True, True]
    assert not {"follow-up day 7", "follow-up day 30"} & set(state["overdue"])
    assert [s["session_id"] for s in state["sessions"]] == [s["session_id"] for s in sessions]
    minimum = program.track("adult-mh").min_weekly_hours
    weekly = [
        sum(s["minutes"] for s in state["sessions"][w * 3 : w * 3 + 3] if s["attended"]) / 60 for w in range(WEEKS)
    ]
    assert [w for w, hours in enumerate(weekly) if hours >= minimum] == [
        w for w in range(WEEKS) if not any((w, slot) in MISSED for slot in range(3))
    ]
    writes = state["writes"]
    expected_keys = {f"{key}/{part}" for part in ("task", "careteam", "careplan", "aftercare-plan")}
    expected_keys |= {f"{key}/encounter/{session_id}" for session_id in attended}
    assert set(writes) == expected_keys
    assert all(write["id"] for write in writes.values())

    # ---- HAPI, read back ----
    resolve = Resolver(hapi_client)
    patient, service_request = seeded["Patient"], seeded["ServiceRequest"]

    [task] = await _written(hapi_client, "Task", f"{key}/task")
    assert (task["status"], task["businessStatus"]["coding"][0]["code"]) == ("completed", "fulfillment-completed")
    assert await resolve(task["for"]) == patient
    assert await resolve(task["focus"]) == service_request
    assert [await resolve(ref) for ref in task["basedOn"]] == [service_request]

    [team] = await _written(hapi_client, "CareTeam", f"{key}/careteam")
    assert team["status"] == "inactive"
    assert await resolve(team["subject"]) == patient

    [plan] = await _written(hapi_client, "CarePlan", f"{key}/careplan")
    assert plan["status"] == "completed"
    assert await resolve(plan["subject"]) == patient
    assert [await resolve(ref) for ref in plan["supportingInfo"]] == [service_request]
    history = (await hapi_http.get(f"CarePlan/{plan['id']}/_history")).json()
    versions = sorted(int(entry["resource"]["meta"]["versionId"]) for entry in history["entry"])
    assert len(versions) > 1
    assert versions == list(range(1, len(versions) + 1))
    assert (await hapi_client.vread("CarePlan", plan["id"], "1"))["status"] == "active"
    assert plan["meta"]["versionId"] == str(versions[-1])

    [aftercare] = await _written(hapi_client, "CarePlan", f"{key}/aftercare-plan")
    assert await resolve(aftercare["subject"]) == patient
    assert [await resolve(ref) for ref in aftercare["supportingInfo"]] == [service_request]
    assert len(aftercare["activity"]) == 2

    # One search for every session's key: exactly one Encounter per attended session, none for a missed one.
    every_session = ",".join(f"{RESOURCE_KEY_SYSTEM}|{key}/encounter/{s['session_id']}" for s in sessions)
    encounters = await hapi_client.search("Encounter", {"identifier": every_session, "_count": "100"})
    by_session = sorted(e["identifier"][0]["value"].rsplit("/", 1)[1] for e in encounters)
    assert by_session == sorted(attended)
    assert not set(missed) & set(by_session)
    for encounter in encounters:
        assert encounter["status"] == "finished"
        assert await resolve(encounter["subject"]) == patient
        assert [await resolve(ref) for ref in encounter["basedOn"]] == [service_request]
        assert encounter["meta"]["versionId"] == "1"  # each repeat left it untouched

    # The snapshot's writes name exactly these resources; the Task's outputs are the plan and the sessions.
    in_hapi = {
        f"{key}/task": f"Task/{task['id']}",
        f"{key}/careteam": f"CareTeam/{team['id']}",
        f"{key}/careplan": f"CarePlan/{plan['id']}",
        f"{key}/aftercare-plan": f"CarePlan/{aftercare['id']}",
        **{e["identifier"][0]["value"]: f"Encounter/{e['id']}" for e in encounters},
    }
    assert {k: f"{w['resource_type']}/{w['id']}" for k, w in writes.items()} == in_hapi
    outputs = {await resolve(output["valueReference"]) for output in task["output"]}
    assert outputs == {in_hapi[f"{key}/careplan"]} | {f"Encounter/{e['id']}" for e in encounters}


# ---- errors a person can act on ----------------------------------------------------------------------


async def test_refused_requests_answer_json_saying_what_to_do(skipping_api, time_skipping_env):
    """Unknown referral: 404. Unknown track: 409 listing the program's tracks. A session, or a discharge,
    before acceptance: 409 naming the phase. A malformed decision: 422 naming the field. A cancelled
    referral: 409 saying it has ended (not a 404: it exists)."""
    program_tracks = ["adult-mh", "adolescent", "sud", "co-occurring", "evening"]
    unknown = f"{HAPI_SOURCE_ID}.no-such-order.{uuid.uuid4().hex[:10]}"
    accept = {"decision": "accept", "track_id": "adult-mh"}

    assert _json_error(await skipping_api.post(f"/api/referrals/{unknown}/decision", json=accept), 404) == (
        "no such referral"
    )
    assert _json_error(await skipping_api.get(f"/api/referrals/{unknown}"), 404) == "no such referral"

    bundle = referral_bundle(ADA)
    key = _key(bundle)
    assert (await _submit(skipping_api, bundle)).status_code == 201
    await _phase_reached(skipping_api, key, "screening")

    wrong_track = await skipping_api.post(
        f"/api/referrals/{key}/decision", json={"decision": "accept", "track_id": "adult"}
    )
    message = _json_error(wrong_track, 409)
    assert "track" in message
    assert all(track in message for track in program_tracks), message

    session = {
        "session_id": "s1",
        "date": program_today().isoformat(),
        "kind": "group",
        "minutes": 180,
        "attended": True,
    }
    early = await skipping_api.post(f"/api/referrals/{key}/sessions", json={"session": session})
    assert "not in phase screening" in _json_error(early, 409)
    early_discharge = await skipping_api.post(
        f"/api/referrals/{key}/discharge", json={"discharge": {"reason": "completed", "date": "2026-12-01"}}
    )
    assert "cannot go from screening to discharged" in _json_error(early_discharge, 409)

    malformed = await skipping_api.post(f"/api/referrals/{key}/decision", json={"decision": "maybe"})
    assert malformed.status_code == 422, malformed.text
    assert [error["loc"] for error in malformed.json()["detail"]] == [["body", "decision"]]

    for _ in range(2):
        cancelled = await skipping_api.post(f"/api/referrals/{key}/cancel", json={"reason": "revoked by referrer"})
        assert (cancelled.status_code, cancelled.json()) == (202, {"status": "accepted"})
    await _phase_reached(skipping_api, key, "cancelled")
    raw = await _describe(time_skipping_env.client, key)
    assert raw.workflow_execution_info.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED
    late = await skipping_api.post(f"/api/referrals/{key}/decision", json=accept)
    assert _json_error(late, 409) == "this referral has ended (phase cancelled) and takes no more changes"


# ---- listing with filters (visibility) ---------------------------------------------------------------


async def test_list_filters_select_by_phase_track_source_and_risk(temporal_env, hapi_client, hapi_base_url):
    """Three referrals on the dev server: one left in screening, one accepted into sud and at risk after two
    missed sessions, one waitlisted from a second referring EHR. Each filter (and a combination) selects
    exactly the right ones among them; other tests' referrals may share the server and are ignored."""
    settings = service_settings(hapi_base_url, "case-manager", HAPI_SOURCE_ID, OTHER_SOURCE_ID)
    async with _serving(temporal_env.client, settings, hapi_client) as api:
        bundles = {"screening": referral_bundle(ADA), "sud": referral_bundle(ADA), "waitlisted": referral_bundle(ADA)}
        sources = {"screening": HAPI_SOURCE_ID, "sud": HAPI_SOURCE_ID, "waitlisted": OTHER_SOURCE_ID}
        keys = {name: _key(bundle, sources[name]) for name, bundle in bundles.items()}
        for name, bundle in bundles.items():
            assert (await _submit(api, bundle, sources[name])).status_code == 201
        mine = set(keys.values())

        sud = await api.post(f"/api/referrals/{keys['sud']}/decision", json={"decision": "accept", "track_id": "sud"})
        assert sud.status_code == 200, sud.text
        day = max(program_today(), ADA_LEFT_HOSPITAL)
        for n in (1, 2):
            missed = {"session_id": f"s{n}", "date": day.isoformat(), "kind": "group", "minutes": 180}
            response = await api.post(
                f"/api/referrals/{keys['sud']}/sessions", json={"session": {**missed, "attended": False}}
            )
            assert response.status_code == 200, response.text
        assert response.json()["at_risk"] is True
        waitlisted = await api.post(f"/api/referrals/{keys['waitlisted']}/decision", json={"decision": "waitlist"})
        assert waitlisted.status_code == 200, waitlisted.text

        expected: list[tuple[dict[str, str], set[str]]] = [
            ({}, set(keys)),
            ({"phase": "screening"}, {"screening"}),
            ({"phase": "intake_scheduled"}, {"sud"}),
            ({"phase": "waitlisted"}, {"waitlisted"}),
            ({"track": "sud"}, {"sud"}),
            ({"track": "adult-mh"}, set()),
            ({"source": HAPI_SOURCE_ID}, {"screening", "sud"}),
            ({"source": OTHER_SOURCE_ID}, {"waitlisted"}),
            ({"at_risk": "true"}, {"sud"}),
            ({"at_risk": "false"}, {"screening", "waitlisted"}),
            ({"track": "sud", "at_risk": "true", "source": HAPI_SOURCE_ID}, {"sud"}),
            ({"phase": "screening", "source": OTHER_SOURCE_ID}, set()),
        ]
        names = {key: name for name, key in keys.items()}
        deadline = time.monotonic() + 15.0  # visibility is eventually consistent
        selected: dict[str, dict[str, Any]] = {}
        for filters, want in expected:
            while True:
                listed = await api.get("/api/referrals", params={**filters, "limit": "1000"})
                assert listed.status_code == 200, listed.text
                rows = {row["key"]: row for row in listed.json() if row["key"] in mine}
                got = {names[key] for key in rows}
                if got == want:
                    selected.update(rows)
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"GET /api/referrals?{filters} selects {sorted(got)}, not {sorted(want)}")
                await asyncio.sleep(0.25)
        row = selected[keys["sud"]]
        assert (row["phase"], row["track"], row["source"], row["at_risk"], row["status"]) == (
            "intake_scheduled",
            "sud",
            HAPI_SOURCE_ID,
            True,
            "running",
        )

        refused = await api.get("/api/referrals", params={"phase": "in treatment"})
        assert refused.status_code == 422, refused.text
        assert [error["loc"] for error in refused.json()["detail"]] == [["query", "phase"]]

        for key in mine:  # leave nothing running on the shared dev server
            assert (await api.post(f"/api/referrals/{key}/cancel", json={})).status_code == 202
        for key in mine:
            await _phase_reached(api, key, "cancelled")
