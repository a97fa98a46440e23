"""Connecting to Temporal with the project's data converter (payloads sealed by the key ring), metrics and traces."""

from __future__ import annotations

import asyncio
import time

from temporalio.client import Client
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from referral_service.codec import data_converter
from referral_service.config import Settings
from referral_service.lifetime import StartupError
from referral_service.logging import get_logger
from referral_service.tracing import temporal_interceptors

log = get_logger()


async def connect(settings: Settings, *, patience_s: float = 0.0) -> Client:
    """A client whose payloads are encrypted with the configured (or dev) key ring, on a runtime that serves
    Prometheus metrics when ``settings.metrics_address`` is set (one per process: call this once), traced
    when ``settings.otlp_traces_endpoint`` is (its worker too: the interceptor covers both sides).

    An unreachable server is retried for ``patience_s`` (one still starting beside us), then the SDK's
    ``RuntimeError`` is raised; a metrics address that cannot be served raises ``StartupError`` at once.
    """
    try:
        runtime = metrics_runtime(settings.metrics_address) if settings.metrics_address else None
    except ValueError as error:  # the exporter's bind failure
        raise StartupError(f"cannot serve metrics on {settings.metrics_address} (metrics_address): {error}") from None
    deadline = time.monotonic() + patience_s
    delay_s = 0.5
    attempt = 0
    while True:
        attempt += 1
        try:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                data_converter=data_converter(settings.key_ring()),
                runtime=runtime,
                interceptors=temporal_interceptors(settings.otlp_traces_endpoint is not None),
            )
        except RuntimeError:  # the SDK's "Failed client connect"
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                raise
            log.warning("temporal unreachable, retrying", address=settings.temporal_address, attempt=attempt)
            await asyncio.sleep(min(delay_s, remaining_s))
            delay_s = min(delay_s * 2, 5.0)


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime whose meter (the SDK's worker metrics and ours) is scraped at ``bind_address``."""
    prometheus = PrometheusConfig(bind_address=bind_address, counters_total_suffix=True, durations_as_seconds=True)
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus))


def metric_meter(client: Client) -> MetricMeter:
    """The meter of the runtime ``client`` runs on (a no-op one when that runtime exports no metrics)."""
    return (client.service_client.config.runtime or Runtime.default()).metric_meter
