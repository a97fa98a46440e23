"""Keys that are not a referral the caller may see answer exactly as a missing one: another source's referral
asked for by a referring system (no existence oracle), and a poll run's key on the routes the earlier suite
(tests/api/test_keys_of_other_workflows.py) did not cover: assessments, team, retry-writes, and every dashboard
form. Real API (uvicorn, auth on, the loopback OpenID provider), worker, Temporal dev server, HAPI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from fhir_mappings.codes import BUSINESS_STATUS_SYSTEM
from tests.api.test_keys_of_other_workflows import Service, service  # noqa: F401 (the poll run's fixture)
from tests.security import surfaces
from tests.security.surfaces import FHIR_JSON, Stack

pytestmark = pytest.mark.timeout(300)
provider, stack = surfaces.provider, surfaces.stack  # the module's fixtures
OTHER_SOURCE = "county-general"
MISSING = "hapi-test.SR-NEVER-SENT.0000000000"


def _cancel_task(task_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Task",
        "id": task_id,
        "status": "requested",
        "intent": "order",
        "businessStatus": {"coding": [{"system": BUSINESS_STATUS_SYSTEM, "code": "cancellation-requested"}]},
    }


def _same(answer: httpx.Response, missing: httpx.Response, key: str) -> None:
    assert (answer.status_code, missing.status_code) == (404, 404), answer.text
    assert answer.text.replace(key, "ID") == missing.text.replace(MISSING, "ID")
    assert answer.headers["content-type"] == missing.headers["content-type"]


async def test_another_sources_referral_reads_as_missing(stack: Stack) -> None:
    key = await stack.submit()
    other = stack.bearer("referring-system", source=OTHER_SOURCE)
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        theirs = await http.get(f"/fhir/Task/{key}", headers=other)
        missing = await http.get(f"/fhir/Task/{MISSING}", headers=other)
        own = await http.get(f"/fhir/Task/{key}", headers=stack.bearer("referring-system", source="hapi-test"))
    assert own.status_code == 200  # it exists: only its owner sees so
    _same(theirs, missing, key)


async def test_another_sources_referral_cannot_be_cancelled_and_reads_as_missing(stack: Stack) -> None:
    key = await stack.submit()
    other = FHIR_JSON | stack.bearer("referring-system", source=OTHER_SOURCE)
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as http:
        theirs = await http.put(f"/fhir/Task/{key}", json=_cancel_task(key), headers=other)
        missing = await http.put(f"/fhir/Task/{MISSING}", json=_cancel_task(MISSING), headers=other)
        still = await http.get(f"/api/referrals/{key}", headers=stack.bearer("program-admin"))
    _same(theirs, missing, key)
    assert still.json()["phase"] != "cancelled"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "assessments",
            {"assessment": {"assessment_id": "a1", "instrument": "PHQ-9", "score": 5, "date": "2026-11-21"}},
        ),
        ("team", {"members": {"case_manager": "cm-alvarez"}}),
        ("retry-writes", None),
    ],
)
async def test_the_other_updates_to_a_poll_run_answer_404(service: Service, path: str, body: Any) -> None:  # noqa: F811
    answer = await service.api.post(f"/api/referrals/{service.poll_run}/{path}", json=body)
    assert answer.status_code == 404, answer.text
    assert answer.json() == {"detail": "no such referral"}


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("decision", {"decision": "accept", "track_id": "adult-mh"}),
        ("assessments", {"instrument": "PHQ-9", "score": "5", "date": "2026-11-21"}),
        ("discharge", {"reason": "completed", "date": "2026-11-21"}),
        ("cancel", {"reason": "duplicate"}),
        ("team", {"role": "case_manager", "member": "cm-alvarez"}),
        ("retry-writes", {}),
    ],
)
async def test_every_dashboard_form_for_a_poll_run_says_no_such_referral(
    service: Service,  # noqa: F811
    path: str,
    form: dict[str, str],
) -> None:
    posted = await service.api.post(f"/referrals/{service.poll_run}/{path}", data=form)
    assert posted.status_code in (303, 404), posted.text
    if posted.status_code == 303:  # POST-redirect-GET: the message rides in the flash cookie
        shown = await service.api.get(posted.headers["location"])
        assert "no such referral" in shown.text
    else:
        assert "no such referral" in posted.text
