"""Which EHR answers are refusals for good (recorded on the referral, which goes on) and which are retried: the
rule the write-back activities apply (conflicts, which depend on the attempt, are in
tests/workflows/test_refused_writes.py)."""

from __future__ import annotations

import httpx
import pytest

from referral_service.activities.writeback import _refused_for_good
from referral_service.ehr.client import FhirClient
from referral_service.ehr.errors import FhirError, error_from_response
from referral_service.ehr.source import SourceConfig

OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "processing"}]}


def _error(status: int) -> FhirError:
    return error_from_response(httpx.Response(status, json=OUTCOME))


@pytest.mark.parametrize(
    ("status", "with_auth", "refused"),
    [
        (400, False, True),
        (403, False, True),
        (404, False, True),
        (410, False, True),
        (422, False, True),
        (401, False, False),  # credentials can be fixed
        (401, True, False),
        (403, True, False),  # a source we authenticate to: our token lacks a grant someone can give
        (429, False, False),
        (500, False, False),
        (503, True, False),
    ],
)
async def test_what_is_refused_for_good(status: int, with_auth: bool, refused: bool) -> None:
    auth = httpx.BasicAuth("service", "secret") if with_auth else None
    async with FhirClient(SourceConfig(id="ehr", base_url="http://127.0.0.1:9/fhir", auth=auth)) as client:
        assert _refused_for_good(client, _error(status)) is refused
