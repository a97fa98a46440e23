"""The FHIR intake endpoint, driven in-process, against the real Temporal dev server and the real HAPI FHIR server.

Nothing is mocked: the app starts real workflows on the dev server (payload codec on), a real worker runs them
and writes to HAPI, and every "nothing was started" claim is checked on the Temporal server itself. Each test
has its own task queue and each referral its own identifiers, so tests never see each other's workflows.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode

from fhir_mappings.codes import RESOURCE_KEY_SYSTEM
from referral_service.api.app import create_app
from referral_service.config.limits import IntakeLimits
from referral_service.domain.referral import Identifier, referral_key
from referral_service.ehr.client import FhirClient
from referral_service.worker import create_worker
from tests.api.intake_checks import FHIR_JSON, assert_not_started, echoed, expressions, patient_phi, resource_of_type
from tests.api_server import service_settings
from tests.conftest import HAPI_SOURCE_ID
from tests.polling import eventually
from tests.referrals import referral_bundle
from workflows import search_attributes

ADA = "ada-testpatient-adult-inpatient"
# How a contained ServiceRequest names what the fixture Bundle addresses by fullUrl.
CONTAINED_IDS = {"Patient": "pat", "Practitioner": "doc", "Encounter": "stay", "Condition": "dx"}

Body = bytes | dict[str, Any]


# ---- helpers -----------------------------------------------------------------------------------------


def _placer(bundle: dict[str, Any]) -> dict[str, str]:
    identifier = resource_of_type(bundle, "ServiceRequest")["identifier"][0]
    return {"system": identifier["system"], "value": identifier["value"]}


def _key(bundle: dict[str, Any]) -> str:
    """The workflow id the service gives this Bundle's referral."""
    return referral_key(HAPI_SOURCE_ID, Identifier(**_placer(bundle)))


def _phi(bundle: dict[str, Any]) -> list[str]:
    return patient_phi(resource_of_type(bundle, "Patient"))


def _absolute(resource: Any, base_url: str) -> Any:
    """``resource`` with every relative ``Type/id`` reference made absolute to ``base_url``."""
    if isinstance(resource, list):
        return [_absolute(item, base_url) for item in resource]
    if not isinstance(resource, dict):
        return resource
    out = {key: _absolute(value, base_url) for key, value in resource.items()}
    ref = out.get("reference")
    if isinstance(ref, str) and re.fullmatch(r"[A-Za-z]+/[A-Za-z0-9.-]+", ref):
        out["reference"] = f"{base_url}/{ref}"
    return out


def _contained(bundle: dict[str, Any]) -> dict[str, Any]:
    """The Bundle's ServiceRequest alone, carrying what it references as contained resources."""
    local = {
        entry["fullUrl"]: f"#{CONTAINED_IDS[entry['resource']['resourceType']]}"
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] in CONTAINED_IDS
    }
    text = json.dumps([e["resource"] for e in bundle["entry"]])
    for full_url, local_ref in local.items():
        text = text.replace(f'"{full_url}"', f'"{local_ref}"')
    resources = json.loads(text)
    [service_request] = [r for r in resources if r["resourceType"] == "ServiceRequest"]
    service_request["contained"] = [
        {**r, "id": CONTAINED_IDS[r["resourceType"]]} for r in resources if r["resourceType"] in CONTAINED_IDS
    ]
    return service_request


async def _post(api: httpx.AsyncClient, path: str, body: Body, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await api.post(path, content=content, headers={**FHIR_JSON, **(headers or {})})


async def _seed(hapi_client: FhirClient, bundle: dict[str, Any]) -> dict[str, str]:
    """Write the Bundle to HAPI as the hospital's EHR holds it; the server-assigned id of each resource type."""
    response = await hapi_client.transaction(bundle)
    locations = [entry["response"]["location"].split("/") for entry in response["entry"]]
    return {parts[0]: parts[1] for parts in locations}


# ---- submitting a referral ---------------------------------------------------------------------------


async def test_bundle_gets_a_received_task_and_the_referral_reads_back_once_a_worker_runs(
    api, settings, temporal_env, hapi_client
):
    """A hospital posting a referral Bundle gets 201 and its Task (received), and can read that Task back."""
    bundle = referral_bundle(ADA)
    key = _key(bundle)

    response = await _post(api, "/fhir", bundle)

    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.headers["Location"] == f"Task/{key}"
    created = response.json()
    assert (created["resourceType"], created["id"], created["status"]) == ("Task", key, "received")
    assert created["focus"] == {"type": "ServiceRequest", "identifier": _placer(bundle)}
    assert {"system": RESOURCE_KEY_SYSTEM, "value": f"{key}/task"} in created["identifier"]
    assert _placer(bundle)["value"] in key  # the order number, readable in the Temporal UI
    description = await temporal_env.client.get_workflow_handle(key).describe()
    assert description.workflow_type == "ReferralWorkflow"
    assert description.task_queue == settings.task_queue
    assert description.typed_search_attributes.get(search_attributes.SOURCE) == HAPI_SOURCE_ID

    async def read_task() -> httpx.Response | None:
        read = await api.get(f"/fhir/Task/{key}")
        return read if read.status_code == 200 else None

    # The API answered without a worker; reading the Task needs one to answer the workflow's query.
    async with create_worker(temporal_env.client, settings.task_queue, {HAPI_SOURCE_ID: hapi_client}):
        read = await eventually(read_task, f"GET /fhir/Task/{key} to answer 200")
    task = read.json()
    assert (task["resourceType"], task["id"]) == ("Task", key)
    assert task["status"] == "received"
    assert task["focus"] == created["focus"]
    assert task["identifier"] == created["identifier"]


async def test_same_bundle_again_returns_the_same_task_and_starts_no_second_referral(api, temporal_env):
    """Sending the same referral twice answers 200 with the first Task; the program sees one referral."""
    bundle = referral_bundle(ADA)

    first = await _post(api, "/fhir", bundle)
    again = await _post(api, "/fhir", copy.deepcopy(bundle))

    assert (first.status_code, again.status_code) == (201, 200), again.text
    key = first.json()["id"]
    assert again.json()["resourceType"] == "Task"
    assert again.json()["id"] == key
    assert again.headers["Location"] == first.headers["Location"] == f"Task/{key}"
    assert again.headers["X-Referral-Closed"] == "false"
    current = await temporal_env.client.get_workflow_handle(key).describe()

    async def runs_once_visible() -> list[Any] | None:
        runs = [run async for run in temporal_env.client.list_workflows(f"WorkflowId = '{key}'")]
        return runs if current.run_id in {run.run_id for run in runs} else None

    runs = await eventually(runs_once_visible, f"the run of {key} in visibility")
    assert [run.run_id for run in runs] == [current.run_id]


@pytest.mark.parametrize("form", ["absolute", "contained"])
async def test_service_request_alone_is_accepted(form, api, settings, temporal_env, hapi_client, hapi_base_url):
    """A ServiceRequest posted alone, pointing into the hospital's FHIR server or carrying its resources, gets 201."""
    bundle = referral_bundle(ADA)
    key = _key(bundle)
    if form == "absolute":
        ids = await _seed(hapi_client, bundle)
        stored = await hapi_client.read("ServiceRequest", ids["ServiceRequest"])
        submission = _absolute(stored, hapi_base_url)
        assert submission["subject"]["reference"] == f"{hapi_base_url}/Patient/{ids['Patient']}"
        expected_focus = {"reference": f"ServiceRequest/{ids['ServiceRequest']}"}
        expected_for = {"reference": f"Patient/{ids['Patient']}"}
    else:
        submission = _contained(bundle)
        assert submission["subject"] == {"reference": "#pat"}
        expected_focus = {"type": "ServiceRequest", "identifier": _placer(bundle)}
        expected_for = {"type": "Patient", "identifier": resource_of_type(bundle, "Patient")["identifier"][0]}

    response = await _post(api, "/fhir/ServiceRequest", submission)

    assert response.status_code == 201, response.text
    task = response.json()
    assert (task["resourceType"], task["id"], task["status"]) == ("Task", key, "received")
    assert response.headers["Location"] == f"Task/{key}"
    assert (task["focus"], task["for"]) == (expected_focus, expected_for)
    description = await temporal_env.client.get_workflow_handle(key).describe()
    assert description.task_queue == settings.task_queue
    assert description.typed_search_attributes.get(search_attributes.SOURCE) == HAPI_SOURCE_ID


# ---- refusing what cannot become a referral ----------------------------------------------------------


def _truncated(bundle: dict[str, Any]) -> Body:
    return json.dumps(bundle)[:-1].encode()


def _without_subject(bundle: dict[str, Any]) -> Body:
    del resource_of_type(bundle, "ServiceRequest")["subject"]
    return bundle


def _contained_without_subject(bundle: dict[str, Any]) -> Body:
    service_request = _contained(bundle)
    del service_request["subject"]
    return service_request


def _with(element: str, value: Any) -> Callable[[dict[str, Any]], Body]:
    def mutate(bundle: dict[str, Any]) -> Body:
        resource_of_type(bundle, "ServiceRequest")[element] = value
        return bundle

    return mutate


def _patient_alone(bundle: dict[str, Any]) -> Body:
    return resource_of_type(bundle, "Patient")


def _patient_name_as_birth_date(bundle: dict[str, Any]) -> Body:
    """The patient's name typed into a date element: the value must not come back in the error."""
    patient = resource_of_type(bundle, "Patient")
    patient["birthDate"] = f"{patient['name'][0]['given'][0]} {patient['name'][0]['family']}"
    return bundle


def _patient_details_as_note(bundle: dict[str, Any]) -> Body:
    """Name, MRN and birth date pasted into the note as a string (FHIR wants a list of Annotations)."""
    service_request = resource_of_type(bundle, "ServiceRequest")
    service_request["note"] = " ".join(_phi(bundle))
    return bundle


def _oversized(bundle: dict[str, Any]) -> Body:
    """A referral padded past the 1 MB intake limit (a pasted discharge summary, say)."""
    resource_of_type(bundle, "ServiceRequest")["note"] = [{"text": "x" * 1_100_000}]
    return bundle


def _nested_json(_: dict[str, Any]) -> Body:
    """Arrays inside arrays, deeper than any JSON parser's stack."""
    return b"[" * 200_000 + b"]" * 200_000


def _nested_extensions(bundle: dict[str, Any]) -> Body:
    """Valid-looking FHIR extensions nested 300 deep (validation would recurse once per level)."""
    innermost: dict[str, Any] = {"url": "http://example.org/x", "valueString": "x"}
    for _ in range(300):
        innermost = {"url": "http://example.org/x", "extension": [innermost]}
    resource_of_type(bundle, "ServiceRequest")["extension"] = [innermost]
    return bundle


# (how the body is spoilt, where it is posted, extra headers, HTTP status, issue code, expression named)
BAD_SUBMISSIONS = [
    pytest.param(_oversized, "/fhir", {}, 413, "too-costly", None, id="body-over-1MB"),
    pytest.param(_nested_json, "/fhir", {}, 400, "structure", None, id="json-nested-200k-deep"),
    pytest.param(_nested_extensions, "/fhir", {}, 400, "invalid", None, id="extensions-nested-300-deep"),
    pytest.param(_truncated, "/fhir", {}, 400, "structure", None, id="not-json"),
    pytest.param(_without_subject, "/fhir", {}, 400, "invalid", "ServiceRequest.subject", id="bundle-no-subject"),
    pytest.param(
        _contained_without_subject,
        "/fhir/ServiceRequest",
        {},
        400,
        "invalid",
        "ServiceRequest.subject",
        id="service-request-no-subject",
    ),
    pytest.param(_with("status", "bogus"), "/fhir", {}, 422, "value", "ServiceRequest.status", id="status-bogus"),
    pytest.param(_with("priority", 5), "/fhir", {}, 400, "invalid", "ServiceRequest.priority", id="priority-number"),
    pytest.param(
        _with("authoredOn", "yesterday"), "/fhir", {}, 400, "invalid", "ServiceRequest.authoredOn", id="authored-text"
    ),
    pytest.param(
        _with("authoredOn", 12), "/fhir", {}, 400, "invalid", "ServiceRequest.authoredOn", id="authored-number"
    ),
    pytest.param(
        _with("intent", ["order"]),
        "/fhir",
        {},
        400,
        "invalid",
        "ServiceRequest.intent",
        id="intent-list",
    ),
    pytest.param(
        _with("subject", "Patient/1"),
        "/fhir",
        {},
        400,
        "invalid",
        "ServiceRequest.subject",
        id="subject-string",
    ),
    pytest.param(
        _patient_alone, "/fhir/ServiceRequest", {}, 400, "invalid", "ServiceRequest.resourceType", id="patient-posted"
    ),
    pytest.param(
        _with("status", "completed"), "/fhir", {}, 422, "business-rule", "ServiceRequest.status", id="status-completed"
    ),
    pytest.param(
        lambda bundle: bundle,
        "/fhir",
        {"X-Referral-Source": "st-elsewhere"},
        422,
        "not-supported",
        "X-Referral-Source",
        id="unknown-source",
    ),
    pytest.param(
        _patient_name_as_birth_date,
        "/fhir",
        {},
        400,
        "invalid",
        "Bundle.entry[0].resource.birthDate",
        id="name-in-birth-date",
    ),
    pytest.param(_patient_details_as_note, "/fhir", {}, 400, "invalid", "ServiceRequest.note", id="phi-in-note"),
]


@pytest.mark.parametrize(("spoil", "path", "headers", "status", "code", "expression"), BAD_SUBMISSIONS)
async def test_unusable_submission_is_refused_with_the_element_named_and_nothing_started(
    spoil, path, headers, status, code, expression, api, settings, temporal_env
):
    """A submission that cannot become a referral gets a 4xx OperationOutcome naming the element, and no referral."""
    bundle = referral_bundle(ADA)
    phi = _phi(bundle)
    key = _key(bundle)

    response = await _post(api, path, spoil(bundle), headers)

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert code in [issue["code"] for issue in outcome["issue"]]
    assert all(issue["severity"] in ("error", "fatal") for issue in outcome["issue"])
    if expression is not None:
        assert any(expression in named for named in expressions(outcome)), expressions(outcome)
    leaked = echoed(phi, response.text)
    assert leaked == [], f"the error response echoes patient data: {leaked}"
    await assert_not_started(temporal_env.client, key, settings.task_queue)


async def test_a_source_over_its_rate_gets_429_with_retry_after_and_other_sources_go_on(hapi_base_url, temporal_env):
    """One EHR re-sending a backlog is slowed down with 429 + Retry-After; the others are not affected."""
    base = service_settings(hapi_base_url, "throttle", HAPI_SOURCE_ID, "other-ehr")
    settings = base.model_copy(update={"intake": IntakeLimits(per_source_per_minute=1, burst=2)})
    app = create_app(settings, temporal_env.client)
    bundles = [referral_bundle(ADA) for _ in range(4)]
    source = {"X-Referral-Source": HAPI_SOURCE_ID}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as api:
        statuses = [(await _post(api, "/fhir", bundle, source)).status_code for bundle in bundles[:2]]
        throttled = await _post(api, "/fhir", bundles[2], source)
        other = await _post(api, "/fhir", bundles[3], {"X-Referral-Source": "other-ehr"})

    assert statuses == [201, 201]
    assert throttled.status_code == 429, throttled.text
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert [issue["code"] for issue in throttled.json()["issue"]] == ["throttled"]
    assert other.status_code == 201, other.text
    with pytest.raises(RPCError) as missing:
        await temporal_env.client.get_workflow_handle(_key(bundles[2])).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


# ---- reading -----------------------------------------------------------------------------------------


async def test_metadata_lists_what_the_endpoint_accepts(api, settings):
    """GET /fhir/metadata is a CapabilityStatement saying ServiceRequests may be created, Tasks read and
    updated (to cancel), at the API's own address (no public base URL configured), never the request's Host."""
    response = await api.get("/fhir/metadata")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"].startswith("4.0")
    assert statement["implementation"]["url"] == f"http://{settings.api_host}:{settings.api_port}/fhir"
    [rest] = statement["rest"]
    interactions = {r["type"]: {i["code"] for i in r["interaction"]} for r in rest["resource"]}
    assert interactions == {"ServiceRequest": {"create"}, "Task": {"read", "update"}}
    assert {"code": "transaction"} in rest["interaction"]


async def test_unknown_task_is_a_404_operation_outcome(api):
    """Reading a Task the service never issued gets 404 with an OperationOutcome, not an error page."""
    response = await api.get(f"/fhir/Task/unknown-{uuid.uuid4().hex[:8]}")

    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [issue["code"] for issue in outcome["issue"]] == ["not-found"]
    assert expressions(outcome) == ["Task.id"]
