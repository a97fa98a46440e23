"""Tokens an attacker can make: forged algorithms, key confusion, broken headers and claims of odd shapes,
each signed (where a signature matters) with the provider's own key. Every one is a 401 with
``WWW-Authenticate`` (an OperationOutcome under ``/fhir``), one short log line, never a 500 or a traceback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment

from referral_service.ehr.client import FhirClient
from tests.auth_tokens import AUDIENCE, PROGRAM
from tests.oidc_provider import KEY, KEY_ID, OidcProvider
from tests.security.conftest import secured_api

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
async def api(
    provider: OidcProvider, temporal_env: WorkflowEnvironment, hapi_base_url: str, hapi_client: FhirClient
) -> AsyncIterator[str]:
    async with secured_api(provider, temporal_env, hapi_base_url, hapi_client) as url:
        yield url


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _part(value: Any) -> str:
    return _b64(json.dumps(value).encode())


def _rs256(header: Any, claims: Any) -> str:
    """Signed with the provider's real key: only the shapes are wrong."""
    signing_input = f"{_part(header)}.{_part(claims)}"
    signature = KEY.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def _claims(provider: OidcProvider, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": provider.issuer, "aud": AUDIENCE, "sub": "mallory", "iat": now, "exp": now + 300}
    return claims | {"program": PROGRAM, "roles": ["program-admin"]} | changes


def _forged(provider: OidcProvider) -> dict[str, str]:
    claims = _claims(provider)
    pem = serialization.Encoding.PEM
    public_pem = KEY.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo)
    hs256_input = f"{_part({'alg': 'HS256', 'kid': KEY_ID})}.{_part(claims)}"
    key_confusion = hmac.new(public_pem, hs256_input.encode(), hashlib.sha256).digest()
    return {
        "ES256 naming the RSA key": f"{_part({'alg': 'ES256', 'kid': KEY_ID})}.{_part(claims)}.{_b64(bytes(64))}",
        "ES384 naming the RSA key": f"{_part({'alg': 'ES384', 'kid': KEY_ID})}.{_part(claims)}.{_b64(bytes(96))}",
        "alg none": f"{_part({'alg': 'none', 'kid': KEY_ID})}.{_part(claims)}.",
        "HS256, the public key as secret": f"{hs256_input}.{_b64(key_confusion)}",
        "header not JSON": f"{_b64(b'{not json')}.{_part(claims)}.{_b64(b'x')}",
        "header a list": f"{_part(['RS256'])}.{_part(claims)}.{_b64(b'x')}",
        "kid a list": _rs256({"alg": "RS256", "kid": [KEY_ID]}, claims),
        "claims a list": _rs256({"alg": "RS256", "kid": KEY_ID}, [claims]),
        "not a JWT": "not-a-jwt",
    }


def _odd_claims(provider: OidcProvider) -> dict[str, str]:
    header = {"alg": "RS256", "kid": KEY_ID}
    shapes: dict[str, dict[str, Any]] = {
        "roles a list of lists": {"roles": [["program-admin"]]},
        "roles an object": {"roles": {"program-admin": True}},
        "roles a list of objects": {"roles": [{"role": "program-admin"}]},
        "roles a string": {"roles": "program-admin"},
        "sub an object": {"sub": {"id": "mallory"}},
        "sub a number": {"sub": 7},
        "exp a string": {"exp": str(int(time.time()) + 300)},
        "exp an object": {"exp": {"at": 1}},
        "program an object": {"program": {"id": PROGRAM}},
        "program a list of lists": {"program": [[PROGRAM]]},
        "source a list": {"source": ["hapi-test"], "roles": ["referring-system"]},
        "aud an object": {"aud": {"id": AUDIENCE}},
        "iss a list": {"iss": [provider.issuer]},
    }
    return {name: _rs256(header, _claims(provider, **change)) for name, change in shapes.items()}


async def _all_refused(
    api: str, provider: OidcProvider, tokens: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Each of ``tokens`` refused on a JSON and a FHIR route; the same claims well formed are let in, so it is
    the shapes that are refused, not the key or the claims."""
    well_formed = _rs256({"alg": "RS256", "kid": KEY_ID}, _claims(provider))
    answers: dict[str, tuple[int, str, str]] = {}
    caplog.set_level(logging.ERROR)
    with capture_logs() as logs:
        async with httpx.AsyncClient(base_url=api, timeout=30) as client:
            accepted = await client.get("/api/referrals", headers={"Authorization": f"Bearer {well_formed}"})
            for name, token in tokens.items():
                for path in ("/api/referrals", "/fhir/Task/hapi-test~nobody"):
                    response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
                    issue = response.json()["issue"][0]["code"] if path.startswith("/fhir") else "json"
                    answers[f"{name} {path}"] = (
                        response.status_code,
                        response.headers.get("www-authenticate", "")[:6],
                        issue,
                    )

    assert accepted.status_code == 200, accepted.text
    expected = {f"{name} {path}": (401, "Bearer", code) for name in tokens for path, code in _PATHS.items()}
    assert answers == expected
    assert [r.getMessage() for r in caplog.records] == []  # no traceback, no error
    refusals = [e for e in logs if e["event"] == "credentials refused"]
    assert len(refusals) == 2 * len(tokens)
    assert all(len(e["reason"]) < 120 for e in refusals)


_PATHS = {"/api/referrals": "json", "/fhir/Task/hapi-test~nobody": "login"}


async def test_forged_algorithms_and_broken_headers_are_401(
    api: str, provider: OidcProvider, caplog: pytest.LogCaptureFixture
) -> None:
    await _all_refused(api, provider, _forged(provider), caplog)


async def test_claims_of_odd_shapes_are_401(api: str, provider: OidcProvider, caplog: pytest.LogCaptureFixture) -> None:
    await _all_refused(api, provider, _odd_claims(provider), caplog)
