"""Generated requests from the API's own OpenAPI document (schemathesis, valid and invalid inputs) against
the running API: none may get a 5xx. Real API (uvicorn), real Temporal dev server and worker, real HAPI."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis import GenerationMode
from schemathesis.schemas import APIOperation
from temporalio.testing import WorkflowEnvironment

from referral_service.ehr.client import FhirClient
from tests.api_server import running_api

EXAMPLES_PER_OPERATION_AND_MODE = 60
pytestmark = pytest.mark.timeout(900)


@dataclass
class FuzzReport:
    requests: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)


def _fuzz(api_url: str) -> FuzzReport:
    """Every operation in /openapi.json, each with generated valid and invalid requests."""
    report = FuzzReport()
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()
        _exercise(operation, GenerationMode.POSITIVE, api_url, report)
        # An operation without parameters or body has no invalid form: nothing to generate.
        with contextlib.suppress(hypothesis.errors.Unsatisfiable):
            _exercise(operation, GenerationMode.NEGATIVE, api_url, report)
    return report


def _exercise(operation: APIOperation, mode: GenerationMode, api_url: str, report: FuzzReport) -> None:
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.generate],
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def call(case: schemathesis.Case) -> None:
        response = case.call(base_url=api_url, timeout=30)
        report.requests += 1
        report.by_operation[operation.label] = report.by_operation.get(operation.label, 0) + 1
        if response.status_code >= 500:
            report.server_errors.append(f"{operation.label} -> {response.status_code}: {response.text[:200]}")

    call()


async def test_generated_requests_never_get_a_server_error(
    temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> None:
    async with running_api(temporal_env, hapi_base_url, hapi_client, queue_prefix="fuzz") as api_url:
        report = await asyncio.to_thread(_fuzz, api_url)

    print(f"schemathesis: {report.requests} requests over {len(report.by_operation)} operations")
    assert report.server_errors == []
    assert report.requests >= 1000, report.by_operation
