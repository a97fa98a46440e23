"""SMART Backend Services against a real token endpoint (``tests/smart_token_server.py``) that verifies each
assertion as an EHR would, and the EHR client reading through it: from the endpoint's own protected
resource, and from the HAPI test server (which ignores the bearer, so only the client side shows there)."""

from __future__ import annotations

import asyncio
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.testing import capture_logs

from referral_service.config.sources import SourceSettings
from referral_service.ehr import FhirClient, PermanentError, TransientError
from tests.smart_token_server import KEY_IDS, SCOPE, TokenServer, serving, smart_auth, write_pem

pytestmark = pytest.mark.integration

ALGORITHMS = pytest.mark.parametrize("algorithm", ["RS384", "ES384"])


@pytest.fixture
def ehr():
    with serving(TokenServer()) as server:
        yield server


def source(folder, ehr: TokenServer, algorithm: str = "RS384", **auth) -> SourceSettings:
    """The EHR as a ``[[sources]]`` entry whose token URL is discovered unless ``auth`` names one."""
    return SourceSettings.model_validate(
        {"id": "general-hospital", "base_url": ehr.fhir_base, "auth": smart_auth(folder, algorithm, **auth)}
    )


@ALGORITHMS
async def test_one_token_serves_many_concurrent_requests(tmp_path, ehr, algorithm):
    """Ten requests at once ask for one token (discovered endpoint, assertion verified) and all carry it."""
    async with FhirClient(source(tmp_path, ehr, algorithm).connection()) as fhir:
        statements = await asyncio.gather(*(fhir.capabilities() for _ in range(10)))

    assert [s["resourceType"] for s in statements] == ["CapabilityStatement"] * 10
    assert ehr.refusals == []
    assert ehr.discoveries == 1
    [claims] = ehr.accepted
    assert claims["header"]["alg"] == algorithm
    assert claims["header"]["kid"] == KEY_IDS[algorithm]
    [token] = ehr.issued
    assert ehr.bearers == [f"Bearer {token}"] * 10


async def test_every_client_of_a_source_shares_its_token(tmp_path, ehr):
    """The API opens a client per request; they reuse the source's token rather than ask for one each."""
    settings = source(tmp_path, ehr)
    for _ in range(3):
        async with FhirClient(settings.connection(timeout_seconds=5)) as fhir:
            await fhir.capabilities()
    assert len(ehr.accepted) == 1
    assert len(set(ehr.bearers)) == 1


async def test_a_token_is_refreshed_before_it_expires(tmp_path, ehr):
    """A short-lived token is replaced half way through its life, with a new assertion (new jti)."""
    ehr.expires_in = 2
    settings = source(tmp_path, ehr, token_url=ehr.token_url)
    async with FhirClient(settings.connection()) as fhir:
        await fhir.capabilities()
        await asyncio.sleep(1.2)
        await fhir.capabilities()

    assert ehr.discoveries == 0
    assert len(ehr.accepted) == 2
    assert ehr.accepted[0]["jti"] != ehr.accepted[1]["jti"]
    assert ehr.bearers[0] != ehr.bearers[1]
    assert all(claims["exp"] - claims["iat"] <= 300 for claims in ehr.accepted)


async def test_a_revoked_token_is_dropped_and_the_request_retried_once(tmp_path, ehr):
    """The EHR revokes the token: the next request gets 401, takes a new token and succeeds."""
    async with FhirClient(source(tmp_path, ehr).connection()) as fhir:
        await fhir.capabilities()
        ehr.issued.clear()
        assert (await fhir.capabilities())["resourceType"] == "CapabilityStatement"

    first, revoked, fresh = ehr.bearers
    assert revoked == first != fresh
    assert len(ehr.accepted) == 2


async def test_a_token_the_fhir_server_never_takes_fails_after_one_retry(tmp_path, ehr):
    """No retry loop: a second 401 is the EHR client's non-retryable error."""
    ehr.honour_tokens = False
    async with FhirClient(source(tmp_path, ehr).connection()) as fhir:
        with pytest.raises(PermanentError) as caught:
            await fhir.capabilities()
    assert caught.value.status == 401
    assert not caught.value.retryable
    assert len(ehr.bearers) == 2


async def test_a_key_the_ehr_did_not_register_is_a_clear_permanent_error(tmp_path, ehr):
    """Signed with another key under the registered kid: invalid_client, not retryable, no FHIR request sent,
    and neither the assertion nor the server's description in the message."""
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wrong = source(tmp_path, ehr, private_key_file=str(write_pem(tmp_path, stranger, "stranger.pem")))
    async with FhirClient(wrong.connection()) as fhir:
        with pytest.raises(PermanentError) as caught:
            await fhir.capabilities()

    message = str(caught.value)
    assert "invalid_client" in message
    assert "key_id" in message  # the hint says what to check
    assert not caught.value.retryable
    assert ehr.refusals == ["assertion: InvalidSignatureError"]
    assert ehr.assertions[0] not in message
    assert "InvalidSignature" not in message
    assert ehr.bearers == []


async def test_an_unavailable_token_endpoint_is_retryable(tmp_path, ehr):
    ehr.token_status = 503
    async with FhirClient(source(tmp_path, ehr).connection()) as fhir:
        with pytest.raises(TransientError) as caught:
            await fhir.capabilities()
    assert caught.value.status == 503
    assert caught.value.retryable
    assert ehr.bearers == []


async def test_a_narrower_grant_is_read_and_logged(tmp_path, ehr):
    """The EHR grants less than asked: the granted scope is what the auth reports, and a warning names
    what is missing."""
    ehr.scope = "system/ServiceRequest.rs system/Task.cru"
    settings = source(tmp_path, ehr)
    with capture_logs() as logs:
        async with FhirClient(settings.connection()) as fhir:
            await fhir.capabilities()

    assert settings.client_auth is not None
    assert settings.client_auth.granted_scope == ehr.scope
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [w["missing_scope"] for w in warnings] == [["system/CareTeam.cru"]]
    assert all(token not in repr(logs) for token in ehr.issued)


@ALGORITHMS
async def test_the_ehr_client_reads_hapi_metadata_through_the_auth(tmp_path, ehr, hapi_base_url, algorithm):
    """The real client against HAPI, authenticated by the token endpoint (configured, not discovered)."""
    settings = SourceSettings.model_validate(
        {
            "id": "hapi-smart",
            "base_url": hapi_base_url,
            "auth": smart_auth(tmp_path, algorithm, token_url=ehr.token_url),
        }
    )
    started = time.monotonic()
    async with FhirClient(settings.connection(timeout_seconds=60)) as fhir:
        statement = await fhir.capabilities()
        await fhir.capabilities()

    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"].startswith("4.")
    [claims] = ehr.accepted
    assert claims["header"]["alg"] == algorithm
    assert claims["aud"] == ehr.token_url
    assert claims["iat"] <= time.time()
    assert claims["exp"] > started
    assert settings.client_auth is not None
    assert settings.client_auth.granted_scope == SCOPE
