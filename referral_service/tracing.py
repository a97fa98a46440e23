"""OpenTelemetry tracing, off unless ``otlp_traces_endpoint`` is configured: one trace runs from the API
request through the workflow and its activities to each EHR call (the Temporal SDK's tracing interceptor
carries the context across). Spans carry routes, codes and ids, never patient data."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator

from fastapi import Request, Response
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from pydantic import HttpUrl
from temporalio.contrib.opentelemetry import TracingInterceptor

SERVICE_NAME = "iop-referral-service"
_TRACER = trace.get_tracer(__name__)


@contextlib.contextmanager
def tracing(endpoint: HttpUrl | None, role: str) -> Iterator[None]:
    """While the block runs, export this process's spans over OTLP/HTTP to ``endpoint`` (nothing when it is
    None); at the end, flush what is still buffered."""
    if endpoint is None:
        yield
        return
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME, "service.role": role}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=str(endpoint))))
    trace.set_tracer_provider(provider)
    try:
        yield
    finally:
        provider.shutdown()


def temporal_interceptors(enabled: bool) -> list[TracingInterceptor]:
    """The SDK's interceptor (client and worker side) when tracing is on."""
    return [TracingInterceptor()] if enabled else []


async def traced_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """An HTTP middleware: one server span per request, named by its route template (``/api/referrals/{key}``),
    never by its path."""
    with _TRACER.start_as_current_span(f"HTTP {request.method}", kind=trace.SpanKind.SERVER) as span:
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", None)
        if route:
            span.update_name(f"{request.method} {route}")
            span.set_attribute("http.route", route)
        span.set_attribute("http.request.method", request.method)
        span.set_attribute("http.response.status_code", response.status_code)
        return response
