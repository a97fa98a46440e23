"""Every submission in the bad-input corpus (tests/fixtures/bad_input) is refused as its file says.

Each file holds one bad submission and the outcome a hospital should get, written by hand (see
make_corpus.py there): the HTTP status, the OperationOutcome issue code, the element named and, where the
wording matters, a phrase of the diagnostics. The app runs in-process against the real Temporal dev server;
a refusal must start no workflow and must not echo the patient's name, MRN or birth date.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from referral_service.domain.referral import Identifier, referral_key
from tests.api.intake_checks import FHIR_JSON, assert_not_started, echoed, expressions, patient_phi
from tests.conftest import HAPI_SOURCE_ID
from tests.referrals import FIXTURES

CORPUS = Path(__file__).parents[1] / "fixtures" / "bad_input"
CASES = sorted(CORPUS.glob("*/*.json"))
# Order numbers, MRNs and encounter numbers of the cast, made unique per case as tests/referrals.py does.
_UNIQUE = re.compile(r"(SR|SYN-MRN|SYN-ENC)-2026-\d{4}|SYN-(MRN|ENC)-\d{4}")


def _unique(text: str, suffix: str) -> str:
    return _UNIQUE.sub(lambda m: f"{m.group()}-{suffix}", text)


def _cast(name: str, suffix: str) -> tuple[list[str], str]:
    """The PHI of the cast member a case was made from, and the workflow id its referral would get."""
    submission = json.loads(_unique((FIXTURES / f"{name}.json").read_text(), suffix))
    resources = [e["resource"] for e in submission["entry"]] if "entry" in submission else submission["contained"]
    [patient] = [r for r in resources if r["resourceType"] == "Patient"]
    [service_request] = [r for r in [submission, *resources] if r["resourceType"] == "ServiceRequest"]
    placer = Identifier(**{k: service_request["identifier"][0][k] for k in ("system", "value")})
    return patient_phi(patient), referral_key(HAPI_SOURCE_ID, placer)


def _body(case: dict[str, Any], suffix: str) -> bytes:
    text = case["body_text"] if "body_text" in case else json.dumps(case["body"])
    body = _unique(text, suffix).encode("utf-8", "surrogatepass")
    return body.ljust(case.get("pad_to_bytes", 0))  # whitespace after JSON is still JSON: only the size is wrong


def test_the_corpus_is_large_and_every_case_says_what_to_expect():
    assert len(CASES) >= 200
    for path in CASES:
        case = json.loads(path.read_text())
        assert case["description"], path
        assert case["path"] in ("/fhir", "/fhir/ServiceRequest"), path
        assert ("body" in case) != ("body_text" in case), path
        assert 400 <= case["expect"]["status"] < 500, path


@pytest.mark.parametrize("path", CASES, ids=lambda path: f"{path.parent.name}/{path.stem}")
async def test_bad_submission_gets_its_expected_outcome_and_starts_nothing(path, api, settings, temporal_env):
    """The hospital gets the 4xx OperationOutcome the case expects, naming the element; no referral starts."""
    case = json.loads(path.read_text())
    expect = case["expect"]
    suffix = uuid.uuid4().hex[:8]
    phi, key = _cast(case["cast"], suffix)

    response = await api.post(case["path"], content=_body(case, suffix), headers={**FHIR_JSON, **case["headers"]})

    assert response.status_code == expect["status"], response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert expect["code"] in [issue["code"] for issue in outcome["issue"]], response.text
    assert all(issue["severity"] in ("error", "fatal") for issue in outcome["issue"])
    if expect["expression"] is not None:
        assert any(expect["expression"] in named for named in expressions(outcome)), response.text
    if "diagnostics" in expect:
        assert any(expect["diagnostics"] in issue["diagnostics"] for issue in outcome["issue"]), response.text
    assert echoed(phi, response.text) == [], "the error response echoes patient data"
    await assert_not_started(temporal_env.client, key, settings.task_queue)
