"""structlog, configured once: JSON when not on a terminal, readable on one; PHI redacted by construction.

Redaction is an allow-list: only keys known to carry no patient data reach the output; any other key's
value is replaced, so a careless ``log.info("x", patient=...)`` cannot leak.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import structlog

SAFE_KEYS = frozenset(
    {
        "event",
        "level",
        "timestamp",
        "logger",
        "exc_info",
        "workflow_id",
        "run_id",
        "referral_key",
        "source_id",
        "task_queue",
        "phase",
        "track",
        "status",
        "resource_type",
        "resource_id",
        "version",
        "method",
        "path",
        "status_code",
        "duration_ms",
        "attempt",
        "error_type",
        "issue_codes",
        "issue_descriptions",  # ehr.errors.describe_issue: severity, code, where, HAPI code; never diagnostics
        "expressions",
        "count",
        "url",
        "port",
        "service",
        "created",
        "activity",
        "namespace",
        "address",
        "key_id",
        "retry_after",
        "scope",  # SMART system scopes granted to the service: no patient data
        "missing_scope",
        "expires_in",
        "reason",  # why the dev stack restarted a child server (devstack.supervisor): our own words
        "backoff_s",
        # an audit record (referral_service.store.audit): staff and system ids, roles, a route template, a
        # code, and the caller's network address (a workstation's or an EHR's, never a patient's)
        "at",
        "user",
        "roles",
        "source",
        "action",
        "outcome",
        "client",
    }
)
REDACTED = "[redacted]"


def redact_unknown_keys(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace the value of every key not on the allow-list."""
    for key in event:
        if key not in SAFE_KEYS:
            event[key] = REDACTED
    return event


def configure(fmt: Literal["auto", "json", "console"] = "auto", level: str = "INFO") -> None:
    """Configure structlog (and route stdlib logging through the same level)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_unknown_keys,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    # httpx logs every request's URL at INFO; the EHR client logs its own writes, by resource type and id.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def get_logger(**initial: Any) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(**initial)
    return logger
