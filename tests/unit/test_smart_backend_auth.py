"""The client assertion an EHR receives, and the source auth settings refused at start-up."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from referral_service.config import load_settings
from referral_service.config.sources import SmartBackendSettings, SourceSettings
from referral_service.ehr.smart_backend_auth import SmartCredentials, client_assertion
from tests.smart_token_server import CLIENT_ID, KEY_IDS, KEYS, SCOPE, smart_auth, write_pem

TOKEN_URL = "https://auth.general-hospital.example/oauth2/token"  # noqa: S105 - a URL, not a password
BASE_URL = "https://ehr.general-hospital.example/fhir/R4"


def credentials(algorithm: str, jwks_url: str | None = None) -> SmartCredentials:
    return SmartCredentials(
        client_id=CLIENT_ID,
        private_key=KEYS[algorithm],
        key_id=KEY_IDS[algorithm],
        algorithm=algorithm,  # type: ignore[arg-type]
        scope=SCOPE,
        jwks_url=jwks_url,
    )


def source(auth: dict, base_url: str = BASE_URL) -> SourceSettings:
    """The source as the service loads it at start-up (``load_settings`` opens its key file)."""
    return load_settings(sources=[{"id": "general-hospital", "base_url": base_url, "auth": auth}]).sources[0]


@pytest.mark.parametrize("algorithm", ["RS384", "ES384"])
def test_the_assertion_carries_the_claims_backend_services_requires(algorithm):
    """Signed with the registered key; iss = sub = client id, aud = token URL, exp within 5 minutes, a jti."""
    now = time.time()
    assertion = client_assertion(credentials(algorithm), TOKEN_URL, now=now)

    header = jwt.get_unverified_header(assertion)
    assert header == {"alg": algorithm, "kid": KEY_IDS[algorithm], "typ": "JWT"}
    claims = jwt.decode(assertion, KEYS[algorithm].public_key(), algorithms=[algorithm], audience=TOKEN_URL)
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert claims["iat"] == int(now)
    assert 0 < claims["exp"] - now <= 300
    assert len(claims["jti"]) >= 16


def test_each_assertion_has_its_own_jti_and_names_the_jwks_when_configured():
    creds = credentials("ES384", jwks_url="https://iop.example/.well-known/jwks.json")
    first, second = (client_assertion(creds, TOKEN_URL, now=time.time()) for _ in range(2))
    jtis = {jwt.decode(a, options={"verify_signature": False})["jti"] for a in (first, second)}
    assert len(jtis) == 2
    assert jwt.get_unverified_header(first)["jku"] == "https://iop.example/.well-known/jwks.json"


def test_a_source_auth_table_in_toml_gives_the_client_its_credentials(tmp_path):
    """The deployment's TOML: the table validates and the source's connection carries the auth."""
    key_file = write_pem(tmp_path, KEYS["RS384"])
    config = tmp_path / "service.toml"
    config.write_text(
        f'[[sources]]\nid = "general-hospital"\nbase_url = "{BASE_URL}"\n'
        f'auth = {{ kind = "smart-backend", client_id = "{CLIENT_ID}", private_key_file = "{key_file}", '
        f'key_id = "k1", algorithm = "RS384", scope = "{SCOPE}", token_url = "{TOKEN_URL}" }}\n'
    )
    [ehr] = load_settings(config).sources
    assert ehr.auth is not None
    assert ehr.auth.token_url == TOKEN_URL
    assert ehr.connection().auth is ehr.connection().auth is ehr.client_auth


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"algorithm": "HS256"}, "'RS384' or 'ES384'"),
        ({"algorithm": "RS256"}, "'RS384' or 'ES384'"),
        ({"private_key_file": "/nonexistent/key.pem"}, "cannot be read"),
        ({"token_url": "http://auth.general-hospital.example/token"}, "token_url must be an https URL"),
        ({"jwks_url": "http://iop.example/jwks.json"}, "jwks_url must be an https URL"),
        ({"scope": ""}, "scope"),
        ({"client_id": ""}, "client_id"),
    ],
)
def test_unusable_auth_settings_are_refused_at_start_up(tmp_path, change, refusal):
    with pytest.raises(ValueError, match=refusal):
        source(smart_auth(tmp_path) | change)


def test_a_key_that_does_not_fit_the_algorithm_is_refused(tmp_path):
    """An RSA key for ES384, a P-256 key for ES384, a short RSA key: each would be rejected by the EHR."""
    rsa_for_es = smart_auth(tmp_path, "ES384", private_key_file=str(write_pem(tmp_path, KEYS["RS384"], "r.pem")))
    p256 = write_pem(tmp_path, ec.generate_private_key(ec.SECP256R1()), "p256.pem")
    short = write_pem(tmp_path, rsa.generate_private_key(public_exponent=65537, key_size=1024), "short.pem")  # noqa: S505 - the point
    with pytest.raises(ValueError, match="EC key on curve P-384"):
        source(rsa_for_es)
    with pytest.raises(ValueError, match="EC key on curve P-384"):
        source(smart_auth(tmp_path, "ES384", private_key_file=str(p256)))
    with pytest.raises(ValueError, match="at least 2048"):
        source(smart_auth(tmp_path, "RS384", private_key_file=str(short)))


def test_a_broken_key_file_is_refused_without_quoting_it(tmp_path):
    key_file = tmp_path / "broken.pem"
    key_file.write_text("-----BEGIN PRIVATE KEY-----\nS3CR3TMATERIAL\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match="not an unencrypted PEM private key") as caught:
        source(smart_auth(tmp_path, "RS384", private_key_file=str(key_file)))
    assert "S3CR3T" not in str(caught.value)


def test_bearer_tokens_go_only_over_https_except_on_loopback(tmp_path):
    """A FHIR base or token URL in plain http would expose the token; this machine is the exception."""
    with pytest.raises(ValidationError, match=r"base_url .* must be an https URL"):
        source(smart_auth(tmp_path), base_url="http://ehr.general-hospital.example/fhir")
    local_token_url = "http://127.0.0.1:9999/token"  # noqa: S105 - a URL, not a password
    loopback = source(smart_auth(tmp_path, token_url=local_token_url), base_url="http://[::1]:8080/fhir")
    assert loopback.auth is not None


def test_a_plain_string_auth_from_older_settings_is_refused(tmp_path):
    """``auth = "smart-backend-services"`` configured nothing; now it must be a table with the credentials."""
    with pytest.raises(ValidationError, match="auth"):
        source("smart-backend-services")  # type: ignore[arg-type]


def test_a_sync_client_cannot_use_the_auth_by_mistake(tmp_path):
    """Rather than sending requests without credentials, a sync client fails before anything is sent."""
    auth = source(smart_auth(tmp_path)).client_auth
    with httpx.Client(auth=auth) as http, pytest.raises(RuntimeError, match="AsyncClient only"):
        http.get(f"{BASE_URL}/metadata")


def test_the_commented_example_in_the_deploy_settings_is_valid(tmp_path, monkeypatch):
    """``deploy/example-service.toml``'s auth block, uncommented with a real key file, loads."""
    head, marker, tail = (
        (Path(__file__).parents[2] / "deploy/example-service.toml").read_text().partition("# [sources.auth]\n")
    )
    lines = [line.removeprefix("# ") for line in tail.splitlines()]
    assert marker
    assert all(line.split(" = ")[0] in SmartBackendSettings.model_fields for line in lines)
    key_file = write_pem(tmp_path, KEYS["RS384"])
    block = re.sub(r'private_key_file = "[^"]+"', f'private_key_file = "{key_file}"', "\n".join(lines))
    config = tmp_path / "service.toml"
    config.write_text(f"{head}[sources.auth]\n{block}\n")
    monkeypatch.setenv("IOP_API_HOST", "127.0.0.1")  # the example binds beyond loopback, with [auth] elsewhere
    [ehr] = load_settings(config).sources
    assert ehr.auth is not None
    assert ehr.auth.algorithm == "RS384"
    assert ehr.client_auth is not None
