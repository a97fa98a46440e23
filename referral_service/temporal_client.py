"""Connecting to Temporal with the project's data converter, and the search-attribute check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from referral_service.codec import EncryptionCodec, KeyRing, data_converter
from referral_service.config import Settings
from referral_service.domain import patient_match
from referral_service.domain.program import Program
from referral_service.lifetime import StartupError
from referral_service.logging import get_logger
from referral_service.store.referrals import ReferralRows
from referral_service.store.sealing import Sealer
from referral_service.tracing import temporal_interceptors
from workflows import search_attributes
from workflows.source_poll import PollInput, SourcePollWorkflow

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


async def missing_search_attributes(client: Client) -> list[str]:
    """Names of the referral search attributes the namespace does not have yet."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return [key.name for key in search_attributes.ALL if key.name not in listed.custom_attributes]


async def register_search_attributes(client: Client) -> None:
    """Register every referral search attribute (for servers started without them, like the test server)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in search_attributes.ALL
            },
        )
    )


def patient_match_secret(client: Client, fallback: Callable[[], KeyRing]) -> bytes:
    """Derived from the active codec key (``active_codec_key``), so every process makes the same match keys."""
    return patient_match.match_secret(active_codec_key(client, fallback))


def active_codec_key(client: Client, fallback: Callable[[], KeyRing]) -> bytes:
    """The active key of the ring the client encrypts payloads with (``connect`` gives every client one;
    ``fallback`` serves a client without): the one secret every process shares, to derive others from."""
    return codec_key_ring(client, fallback).active_key


def codec_key_ring(client: Client, fallback: Callable[[], KeyRing]) -> KeyRing:
    codec = client.data_converter.payload_codec
    return codec.key_ring if isinstance(codec, EncryptionCodec) else fallback()


def referral_rows(client: Client, database: Engine) -> ReferralRows:
    """The read model in ``database``, its patient details sealed under the client's payload key ring."""
    ring = codec_key_ring(client, unencrypted)
    return ReferralRows(database, Sealer(ring), patient_match.name_search_secret(ring.active_key))


def unencrypted() -> KeyRing:
    """The fallback for a client that must already encrypt (a worker's): its absence is a programming error."""
    raise RuntimeError("the Temporal client must encrypt payloads: connect with temporal_client.connect")


def poll_schedule_id(source_id: str) -> str:
    return f"poll-{source_id}"


async def ensure_poll_schedules(client: Client, settings: Settings, program: Program) -> list[str]:
    """Create, or bring up to date, the polling Schedule of every source with ``poll`` on; their ids."""
    ids = []
    for source in settings.sources:
        if not source.poll:
            continue
        schedule_id = poll_schedule_id(source.id)
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                SourcePollWorkflow.run,
                PollInput(source_id=source.id, program=program, task_queue=settings.task_queue),
                id=schedule_id,
                task_queue=settings.task_queue,
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=source.poll_interval_seconds))]),
            # A poll still running when the next is due (a slow EHR) is not doubled up.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
        try:
            await client.create_schedule(schedule_id, schedule)
        except ScheduleAlreadyRunningError:
            await client.get_schedule_handle(schedule_id).update(_replacing_with(schedule))
        ids.append(schedule_id)
    return ids


def _replacing_with(schedule: Schedule) -> Callable[[ScheduleUpdateInput], ScheduleUpdate]:
    return lambda _: ScheduleUpdate(schedule=schedule)
