"""Logs carry ids and codes only: any field not on the allow-list is redacted by construction."""

import json
from dataclasses import asdict

import structlog

from referral_service import logging as service_logging
from referral_service.store.audit import AuditRecord


def test_unknown_fields_are_redacted_and_safe_fields_kept(capsys):
    """A patient name passed under any key never reaches the output; the workflow id does."""
    previous = structlog.get_config()
    service_logging.configure("json")
    try:
        structlog.get_logger().info(
            "referral received", workflow_id="acme.SR-1", patient="Ada Testpatient", birth_date="1984-02-29"
        )
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:  # the configured logger writes to capsys's stream, closed after this test: later tests would fail
        structlog.configure(**previous)
    assert line["workflow_id"] == "acme.SR-1"
    assert line["patient"] == line["birth_date"] == "[redacted]"
    assert "Testpatient" not in json.dumps(line)


def test_an_audit_event_reaches_the_log_pipeline_whole(capsys):
    """Every field of an audit record is on the allow-list: the pipeline's copy is the record."""
    record = AuditRecord(
        at="2026-12-01T08:00:00.000000+00:00",
        user="dr-lee",
        roles="clinician",
        source=None,
        action="POST /api/referrals/{key}/discharge",
        referral_key="hapi-test.SR-1.0123456789",
        status=200,
        outcome="ok",
        client="10.1.2.3",
    )
    previous = structlog.get_config()
    service_logging.configure("json")
    try:
        structlog.get_logger().info("audit", **asdict(record))
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    finally:
        structlog.configure(**previous)
    assert {key: line[key] for key in asdict(record)} == asdict(record)
