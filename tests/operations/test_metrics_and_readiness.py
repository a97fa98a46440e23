"""What an operator scrapes, probes and traces: ``referral-service worker`` and ``referral-service api`` run as
separate processes (as in the compose stack) against the real Temporal dev server and HAPI; the worker answers
``/readyz`` on its own, each process serves Prometheus metrics (the service's own beside the SDK's), and both
export OpenTelemetry spans to an OTLP/HTTP receiver run by the test, where one trace joins them.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from temporalio.testing import WorkflowEnvironment

from referral_service.devstack.process import free_port
from tests.api.intake_checks import echoed, patient_phi, resource_of_type
from tests.api_driver import ADA, Api
from tests.conftest import HAPI_SOURCE_ID
from tests.hapi_refusals import refusing
from tests.operations.processes import service_env, start
from tests.polling import eventually
from tests.program_day import program_today
from tests.referrals import referral_bundle

pytestmark = pytest.mark.timeout(300)

# Every referral here is Ada's: her name and birth date are what could leak (each copy has a fresh MRN).
ADA_PHI = patient_phi(resource_of_type(referral_bundle(ADA), "Patient"))
START_PATIENCE_S = 90.0


class TraceReceiver(ThreadingHTTPServer):
    """The receiving end of OTLP/HTTP: keeps every span exported to ``/v1/traces``."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", free_port()), _ExportHandler)
        self.spans: list[Span] = []
        self.roles: dict[bytes, str] = {}  # span id -> the exporting process's service.role


class _ExportHandler(BaseHTTPRequestHandler):
    server: TraceReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.server.spans.append(span)
                    self.server.roles[span.span_id] = attributes.get("service.role", "")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def traces() -> Iterator[TraceReceiver]:
    receiver = TraceReceiver()
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.shutdown()


@pytest.fixture(scope="module")
def stack(
    temporal_env: WorkflowEnvironment,
    hapi_base_url: str,
    traces: TraceReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """A worker and an API process on their own task queue; the URLs of their health and metrics endpoints."""
    folder = tmp_path_factory.mktemp("operations")
    config = f'[[sources]]\nid = "{HAPI_SOURCE_ID}"\nbase_url = "{hapi_base_url}"\n'
    temporal_address = temporal_env.client.service_client.config.target_host
    common = service_env(folder, temporal_address, f"operations-{os.getpid()}", config) | {
        "IOP_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{traces.server_port}/v1/traces",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # export every 200 ms rather than 5 s
    }
    ports = {"worker": int(common["IOP_WORKER_HEALTH_PORT"]), "api": int(common["IOP_API_PORT"])}
    ports |= {name: free_port() for name in ("worker_metrics", "api_metrics")}
    processes = {
        role: start(
            [role], common | {"IOP_METRICS_ADDRESS": f"127.0.0.1:{ports[f'{role}_metrics']}"}, folder / f"{role}.log"
        )
        for role in ("worker", "api")
    }
    try:
        yield {
            "worker": f"http://127.0.0.1:{ports['worker']}",
            "worker_metrics": f"http://127.0.0.1:{ports['worker_metrics']}/metrics",
            "api": f"http://127.0.0.1:{ports['api']}",
            "api_metrics": f"http://127.0.0.1:{ports['api_metrics']}/metrics",
            "logs": str(folder),
        }
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        codes = {role: process.wait(timeout=60) for role, process in processes.items()}
        assert codes == {"worker": 0, "api": 0}, f"SIGTERM should stop both cleanly: {codes}"


@pytest.fixture(scope="module")
async def api(stack: dict[str, str]) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=stack["api"], timeout=60) as http:
        await _ready(http, "api", stack)
        yield Api(http)


async def _ready(http: httpx.AsyncClient, role: str, stack: dict[str, str], url: str = "/readyz") -> dict[str, str]:
    started = time.monotonic()
    while True:
        try:
            response = await http.get(url)
            if response.status_code == 200:
                checks: dict[str, str] = response.json()["checks"]
                return checks
        except httpx.TransportError:
            pass
        if time.monotonic() - started > START_PATIENCE_S:
            log = (Path(stack["logs"]) / f"{role}.log").read_text(errors="replace")[-3000:]
            pytest.fail(f"{role} not ready after {START_PATIENCE_S:.0f}s:\n{log}")
        await asyncio.sleep(0.5)


def _samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric in Prometheus text format."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(\{{.*\}})? (\S+)", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


def _value(samples: dict[str, float], **labels: str) -> float:
    """The sum over the series carrying every one of ``labels``."""
    return sum(v for k, v in samples.items() if all(f'{name}="{value}"' in k for name, value in labels.items()))


async def test_the_worker_process_reports_readiness_on_its_own(stack: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=stack["worker"], timeout=10) as http:
        checks = await _ready(http, "worker", stack)
        assert checks == {"temporal": "ok", f"ehr:{HAPI_SOURCE_ID}": "ok", "worker": "ok"}
        assert (await http.get("/api/referrals")).status_code == 404, "a worker serves health, not the API"


async def test_each_process_serves_its_metrics_and_the_sdk_s(stack: dict[str, str], api: Api) -> None:
    key = await api.submit()
    await api.snapshot_until(key, lambda s: s["phase"] == "screening", "screening")
    await api.accept(key, "adult-mh")
    await api.snapshot_until(key, lambda s: s["phase"] == "intake_scheduled", "intake scheduled")

    async with httpx.AsyncClient(timeout=10) as http:
        api_metrics = (await http.get(stack["api_metrics"])).text
        intake = _samples(api_metrics, "iop_intake_latency_seconds_count")
        assert _value(intake, channel="push", status_code="201") == 1, intake

        async def worker_counts() -> str | None:
            text = (await http.get(stack["worker_metrics"])).text
            phases = _samples(text, "iop_referrals_entered_phase_total")
            done = _value(phases, phase="accepted", source=HAPI_SOURCE_ID) == 1
            return text if done else None

        worker_metrics = await eventually(worker_counts, "the accepted referral counted", patience_s=30)

    phases = _samples(worker_metrics, "iop_referrals_entered_phase_total")
    assert _value(phases, phase="received", source=HAPI_SOURCE_ID) == 1, phases
    assert _value(phases, phase="declined") == 0, phases
    writes = _samples(worker_metrics, "iop_ehr_writes_total")
    assert _value(writes, resource_type="CareTeam", outcome="created", source=HAPI_SOURCE_ID) == 1, writes
    assert _value(writes, resource_type="Task", outcome="created") == 1, writes  # then updated, never re-created
    assert _value(writes, resource_type="Task", outcome="updated") >= 1, writes
    assert _samples(worker_metrics, "temporal_workflow_task_execution_latency_count"), "no SDK worker metrics"
    assert not echoed(ADA_PHI, api_metrics + worker_metrics), "metrics must carry no patient data"

    log_lines = (Path(stack["logs"]) / "worker.log").read_text().splitlines()
    logged = [json.loads(line) for line in log_lines if line.startswith("{")]
    care_team = [e for e in logged if e["event"] == "ehr write" and e.get("resource_type") == "CareTeam"]
    assert [e["workflow_id"] for e in care_team] == [key], "each EHR write is logged with its referral's workflow id"


async def test_a_refused_write_is_counted_by_source_and_type_and_logged(
    stack: dict[str, str], api: Api, hapi_base_url: str
) -> None:
    """The EHR refuses an assessment's Observation: the worker counts it (``iop_ehr_writes_refused_total``) and
    logs it with the referral's workflow id, the status and the issue codes, no patient data."""
    key = await api.submit()
    await api.snapshot_until(key, lambda s: s["phase"] == "screening", "screening")
    await api.accept(key, "adult-mh")
    score = {"assessment_id": "phq9-1", "instrument": "PHQ-9", "score": 9, "date": program_today().isoformat()}
    async with refusing(hapi_base_url, {"Observation": 422}):
        recorded = await api.http.post(f"/api/referrals/{key}/assessments", json={"assessment": score})
    assert recorded.status_code == 200, recorded.text
    assert [r["resource_type"] for r in recorded.json()["refused"].values()] == ["Observation"]

    async with httpx.AsyncClient(timeout=10) as http:

        async def refused_count() -> dict[str, float] | None:
            text = (await http.get(stack["worker_metrics"])).text
            refused = _samples(text, "iop_ehr_writes_refused_total")
            return refused if _value(refused, resource_type="Observation", source=HAPI_SOURCE_ID) >= 1 else None

        refused = await eventually(refused_count, "the refused Observation counted", patience_s=30)
    assert _value(refused, resource_type="Task") == 0, refused
    log_lines = (Path(stack["logs"]) / "worker.log").read_text().splitlines()
    logged = [json.loads(line) for line in log_lines if line.startswith("{")]
    [event] = [e for e in logged if e["event"] == "ehr write refused" and e.get("workflow_id") == key]
    assert (event["resource_type"], event["status"], event["issue_codes"]) == ("Observation", 422, ["processing"])
    assert (event["issue_descriptions"], event["attempt"]) == (["error processing at Observation"], 1)
    assert not echoed(ADA_PHI, json.dumps(event)), "the log line must carry no patient data"


async def test_one_trace_runs_from_the_api_request_through_the_workflow_to_the_ehr_write(
    api: Api, traces: TraceReceiver
) -> None:
    key = await api.submit()
    await api.snapshot_until(key, lambda s: s["phase"] == "screening", "screening")

    async def task_write_from_intake() -> Span | None:
        writes = [span for span in list(traces.spans) if span.name == "FHIR PUT Task"]
        return next((w for w in writes if _ancestors(w, traces.spans)[-1].name == "POST /fhir"), None)

    write = await eventually(task_write_from_intake, "the Task write traced back to the intake request", 30)

    chain = _ancestors(write, traces.spans)
    names = [span.name for span in chain]
    assert names[-1] == "POST /fhir", names  # the root: the referring EHR's request
    # The SDK's interceptor: the API starts the workflow, whose activity runs in the worker process.
    assert {"StartWorkflow:ReferralWorkflow", "StartActivity:write_task", "RunActivity:write_task"} <= set(names)
    assert {traces.roles[span.span_id] for span in chain} == {"api", "worker"}, "one trace across both processes"
    assert {span.trace_id for span in chain} == {write.trace_id}
    attributes = {a.key: a.value for a in write.attributes}
    assert attributes["fhir.source"].string_value == HAPI_SOURCE_ID
    assert attributes["http.response.status_code"].int_value in (200, 201)
    exported = b"".join(span.SerializeToString() for span in traces.spans).decode(errors="replace")
    assert not echoed(ADA_PHI, exported), "spans carry no patient data"


def _ancestors(span: Span, spans: list[Span]) -> list[Span]:
    """``span``, its parent, its parent's parent, ... as far as the exported spans reach."""
    by_id = {s.span_id: s for s in spans}
    chain = [span]
    while chain[-1].parent_span_id in by_id:
        chain.append(by_id[chain[-1].parent_span_id])
    return chain
