"""Intake latency: seconds from a referral's arrival (push or subscription delivery) to the answer the
referring EHR receives, as a Prometheus histogram labelled with the channel and the status code."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from fastapi import Request, Response
from temporalio.common import MetricHistogramTimedelta, MetricMeter

from referral_service.domain.metric_names import INTAKE_LATENCY


class IntakeLatency:
    """An HTTP middleware timing the intake routes only."""

    def __init__(self, meter: MetricMeter) -> None:
        name, description = INTAKE_LATENCY
        self._histogram: MetricHistogramTimedelta = meter.create_histogram_timedelta(name, description)

    async def __call__(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        channel = _channel(request.method, request.url.path)
        if channel is None:
            return await call_next(request)
        started = time.monotonic()
        response = await call_next(request)
        elapsed = timedelta(seconds=time.monotonic() - started)
        self._histogram.record(elapsed, {"channel": channel, "status_code": str(response.status_code)})
        return response


def _channel(method: str, path: str) -> str | None:
    if method == "POST" and path in ("/fhir", "/fhir/", "/fhir/ServiceRequest"):
        return "push"
    if method == "PUT" and path.startswith("/subscriptions/"):
        return "subscription"
    return None
