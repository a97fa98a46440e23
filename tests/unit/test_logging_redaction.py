"""Logs carry ids and codes only: any field not on the allow-list is redacted by construction."""

import json

import structlog

from referral_service import logging as service_logging


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
