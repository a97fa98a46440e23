"""The real-world corpus (tests/fixtures/real_world) through the whole service, against a real EHR.

Each case is what a hospital integration engineer would send, built from a published implementation-guide or
vendor example: the EHR (HAPI, request validation on) is given what the case says it holds, the submission goes
in by its route (push, the referrer's Task, subscription, poll), and the answer must be the case's: refused
with a 4xx OperationOutcome naming the element, or taken in (with the warnings it names). Every referral taken
in is then driven through a whole program (accepted, a session attended, discharged, both follow-ups) to
closure, every resource it wrote must pass HAPI's ``$validate``, and where the EHR holds the patient each write
must be found by the patient searches an EHR's chart runs.
"""

from __future__ import annotations

import asyncio
import html
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from fhir_mappings.referral_in import referral_from_fhir
from referral_service.activities.intake_poll import FindReferralsInput, IntakePollActivities
from referral_service.api.app import create_app
from referral_service.cli.render import snapshot_text, snapshot_view
from referral_service.config.sources import SourceSettings
from referral_service.domain.referral import referral_key
from referral_service.ehr.client import FhirClient
from referral_service.intake.take_in import Intake
from referral_service.worker import create_worker
from tests.api_driver import Api
from tests.api_server import service_settings
from tests.conftest import HAPI_SOURCE_ID
from tests.real_world import CONFIGURED_REFERENCES, PROGRAM_NPI, RealWorldCase, load_cases

pytestmark = pytest.mark.timeout(600)
CASE_NAMES = [case.name for case in load_cases()]
# Where the EHR holds the patient, the chart finds the service's resources by these searches.
CHART_SEARCHES = {"Encounter": "subject", "CarePlan": "subject", "CareTeam": "subject", "Task": "patient"}
# Whether the EHR holds the ordering ServiceRequest is not part of a case: the service says so in a warning
# when it must refer to the order by identifier alone, on any case.
ORDER_LINK_WARNING = "ServiceRequest.identifier"


@dataclass(frozen=True)
class Service:
    api: httpx.AsyncClient
    ehr: FhirClient
    intake: Intake


@pytest.fixture(scope="module")
async def service(temporal_env: WorkflowEnvironment, hapi_base_url: str) -> AsyncIterator[Service]:
    """The API in-process and a worker, with the EHR configured as the corpus assumes: its references for the
    program, and the program's own Organization (carrying its NPI) held in the EHR."""
    base = service_settings(hapi_base_url, "real-world")
    source = SourceSettings(id=HAPI_SOURCE_ID, base_url=hapi_base_url, program_references=sorted(CONFIGURED_REFERENCES))
    settings = base.model_copy(update={"sources": (source,)})
    app = create_app(settings, temporal_env.client)
    async with (
        FhirClient(source.connection()) as ehr,
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=60) as api,
        create_worker(temporal_env.client, settings.task_queue, {HAPI_SOURCE_ID: ehr}, database=app.state.database),
    ):
        system, value = PROGRAM_NPI
        program_org = {
            "resourceType": "Organization",
            "id": "riverside-iop",
            "name": "Riverside IOP",
            "identifier": [{"system": system, "value": value}],
        }
        await ehr.update(program_org, if_match_version=None)
        yield Service(api, ehr, app.state.services.intake)


@pytest.mark.parametrize("name", CASE_NAMES)
async def test_a_real_world_referral_gets_its_outcome_and_a_whole_program(name: str, service: Service) -> None:
    case = next(c for c in load_cases(service.ehr.source.base_url) if c.name == name)
    for resource in case.ehr_holds:
        await service.ehr.update(resource, if_match_version=None)
    keys = await _submit(case, service)
    if not case.taken_in:
        assert keys == [], f"{case.name}: refused, yet {keys} started"
        return
    assert keys, f"{case.name}: nothing was taken in"
    if case.expect.outcome == "accept-with-warning":
        await _warnings_shown(service.api, keys[0])
    for key in keys:
        writes = await _whole_program(service.api, key)
        for resource_type, resource_id in writes:
            await _passes_validate(service.ehr, resource_type, resource_id)
        if case.expect.patient_linked:
            await _found_in_the_chart(service.ehr, case.expect.patient, writes)
        await _never_names(service.ehr, case.expect.not_patient, writes)


async def _submit(case: RealWorldCase, service: Service) -> list[str]:
    """Send the case by its route and check the answer; the referral keys taken in."""
    if case.route == "poll":
        return await _poll(case, service)
    if case.route == "subscription":
        stored = await service.ehr.update(case.submission, if_match_version=None)
        response = await service.api.put(f"/subscriptions/{HAPI_SOURCE_ID}/ServiceRequest/{stored.id}")
    else:
        assert case.path is not None
        headers = {"Content-Type": "application/fhir+json", "X-Referral-Source": HAPI_SOURCE_ID}
        response = await service.api.post(case.path, json=case.submission, headers=headers)
    body = response.json()
    assert response.status_code == case.expect.status, f"{case.name}: {response.status_code} {body}"
    if not case.taken_in:
        _names_the_elements(case, body, errors=True)
        return []
    tasks = [e["resource"] for e in body["entry"]] if body["resourceType"] == "Bundle" else [body]
    assert all(t["resourceType"] == "Task" for t in tasks), body
    warnings = [i for t in tasks for c in t.get("contained") or [] for i in c.get("issue") or []]
    _names_the_elements(case, {"issue": warnings}, errors=False)
    if case.expect.taken:
        assert len(tasks) == len(case.expect.taken), f"{case.name}: took {len(tasks)} referrals"
    return [t["id"] for t in tasks]


async def _poll(case: RealWorldCase, service: Service) -> list[str]:
    """Put the ServiceRequest in the EHR and run one poll of it, through the poll activity the worker runs."""
    # A tag of this run makes it a new version even on a rerun against the same EHR (an unchanged PUT is not),
    # so the poll finds it from its own last update, and nothing older.
    meta = case.submission.get("meta") or {}
    run_tag = {"system": "urn:iop-test:run", "code": uuid.uuid4().hex}
    tagged = {**case.submission, "meta": {**meta, "tag": [*meta.get("tag", []), run_tag]}}
    stored = await service.ehr.update(tagged, if_match_version=None)
    updated = await service.ehr.vread("ServiceRequest", stored.id, str(stored.version))
    since = datetime.fromisoformat(updated["meta"]["lastUpdated"])
    polling = IntakePollActivities({HAPI_SOURCE_ID: service.ehr}, service.intake.take_in_polled)
    found = await ActivityEnvironment().run(
        polling.find_changed_referrals, FindReferralsInput(source_id=HAPI_SOURCE_ID, since=since)
    )
    if not case.taken_in:
        assert found.started == 0, f"{case.name}: the poll took it in"
        return []
    assert found.started == 1, f"{case.name}: the poll started {found.started}"
    referral = referral_from_fhir(
        case.submission, source_id=HAPI_SOURCE_ID, source_base_url=service.ehr.source.base_url
    )
    return [referral_key(HAPI_SOURCE_ID, referral.placer_identifier)]


def _names_the_elements(case: RealWorldCase, outcome: dict[str, Any], *, errors: bool) -> None:
    severities = ("error", "fatal") if errors else ("warning",)
    named = {
        e for i in outcome.get("issue") or [] if i.get("severity") in severities for e in i.get("expression") or []
    }
    expect = case.expect
    assert set(expect.expressions) <= named, f"{case.name}: {named} lacks {expect.expressions}"
    if expect.any_of:
        assert named & set(expect.any_of), f"{case.name}: {named} names none of {expect.any_of}"
    if not errors:
        allowed = {*expect.expressions, *expect.any_of, *expect.may_also, ORDER_LINK_WARNING}
        assert named <= allowed, f"{case.name}: unexpected warnings {named - allowed}"


async def _warnings_shown(api: httpx.AsyncClient, key: str) -> None:
    """What intake warned the sender of stays on the referral: its snapshot, ``show`` and its page."""
    state = await Api(api).snapshot_until(key, lambda s: bool(s["referral"]["warnings"]), "the intake warnings")
    shown = snapshot_text(snapshot_view(state))
    page = (await api.get(f"/referrals/{key}")).text
    for warning in state["referral"]["warnings"]:
        assert warning in shown, shown
        assert warning in html.unescape(page), f"{key}: the referral page does not show {warning!r}"


async def _whole_program(api: httpx.AsyncClient, key: str) -> list[tuple[str, str]]:
    """Accept, one attended session, discharge and both follow-ups, today; the resources written, by the
    referral's own account once it has closed."""
    today = datetime.now(ZoneInfo("America/New_York")).date()
    driver = Api(api)
    await driver.snapshot_until(key, lambda s: s["phase"] == "screening", "screening")
    await driver.accept(key, "adult-mh")
    await driver.attend(key, today, session_id="s1")
    await driver.discharge(key, "completed", today)
    await driver.snapshot_until(key, lambda s: s["phase"] == "aftercare", "aftercare")
    for day in (7, 30):
        response = await api.post(f"/api/referrals/{key}/follow-ups", json={"day": day, "reached": True})
        assert response.status_code == 200, response.text
    state = await driver.snapshot_until(key, lambda s: s["phase"] == "closed", "closure")
    assert not state["refused"], f"{key}: the EHR refused {state['refused']}"
    return sorted({(w["resource_type"], w["id"]) for w in state["writes"].values()})


async def _passes_validate(ehr: FhirClient, resource_type: str, resource_id: str) -> None:
    stored = await ehr.read(resource_type, resource_id)
    async with httpx.AsyncClient(base_url=ehr.source.base_url + "/", timeout=60) as http:
        response = await http.post(f"{resource_type}/$validate", json=stored)
    issues = [i for i in response.json().get("issue") or [] if i.get("severity") in ("error", "fatal")]
    assert not issues, f"{resource_type}/{resource_id} fails $validate: {issues}"


async def _found_in_the_chart(ehr: FhirClient, patient: str | None, writes: list[tuple[str, str]]) -> None:
    assert patient is not None
    for resource_type, parameter in CHART_SEARCHES.items():
        ours = {rid for rtype, rid in writes if rtype == resource_type}
        found = await _eventually_found(ehr, resource_type, {parameter: patient}, ours)
        assert ours <= found, f"{resource_type}?{parameter}={patient} misses {ours - found}"


async def _eventually_found(ehr: FhirClient, resource_type: str, params: dict[str, str], wanted: set[str]) -> set[str]:
    found: set[str] = set()
    for _ in range(20):  # HAPI indexes a write a moment after answering it
        found = {r["id"] for r in await ehr.search(resource_type, {**params, "_elements": "id", "_count": "200"})}
        if wanted <= found:
            break
        await asyncio.sleep(0.25)
    return found


async def _never_names(ehr: FhirClient, patients: tuple[str, ...], writes: list[tuple[str, str]]) -> None:
    """No write-back may point at another patient the EHR holds (a wrong-patient write)."""
    for resource_type, resource_id in writes:
        text = str(await ehr.read(resource_type, resource_id))
        for patient in patients:
            assert f"'{patient}'" not in text, f"{resource_type}/{resource_id} names {patient}"
