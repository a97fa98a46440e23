"""Dashboard sign-in settings: refused at start-up when they would fail later, or silently leave sign-in off."""

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from referral_service.codec import KeyRing
from referral_service.config import load_settings
from referral_service.config.auth import AuthSettings

BASE = {
    "issuer": "https://login.example-health.org/realms/iop",
    "audience": "iop-referral-service",
    "jwks_url": "https://login.example-health.org/realms/iop/certs",
    "program": "iop-main",
}
SIGN_IN = {
    "dashboard_client_id": "iop-dashboard",
    "public_base_url": "https://iop.example-health.org",
    "session_key": KeyRing.new_key(),
}


def test_sign_in_settings_with_a_real_key_load():
    auth = AuthSettings.model_validate(BASE | SIGN_IN | {"dashboard_client_secret": "s3cr3t-from-the-provider"})
    assert auth.dashboard_client_id == "iop-dashboard"
    assert "s3cr3t" not in repr(auth)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        pytest.param({"session_key": "changeme"}, "session_key is a placeholder", id="placeholder-key"),
        pytest.param({"session_key": "c2hvcnQ="}, "not a base64 AES-256 key", id="short-key"),
        pytest.param({"session_key": None}, "needs auth.public_base_url and auth.session_key", id="no-key"),
        pytest.param(
            {"dashboard_client_secret": "changeme"}, "client_secret is a placeholder", id="placeholder-secret"
        ),
        pytest.param({"public_base_url": "http://iop.example-health.org"}, "https URL", id="plain-http"),
        pytest.param({"dashboard_scope": "profile roles"}, "must include 'openid'", id="no-openid"),
        pytest.param({"dashboard_client_id": None}, "need auth.dashboard_client_id", id="no-client-id"),
    ],
)
def test_unusable_sign_in_settings_are_refused_without_echoing_secrets(change, complaint):
    given = {name: value for name, value in (BASE | SIGN_IN | change).items() if value is not None}
    with pytest.raises(ValidationError, match=re.escape(complaint)) as refused:
        AuthSettings.model_validate(given)
    assert SIGN_IN["session_key"] not in str(refused.value)
    assert "changeme" not in str(refused.value)


def test_plain_http_is_allowed_to_this_machine_only():
    auth = AuthSettings.model_validate(BASE | SIGN_IN | {"public_base_url": "http://127.0.0.1:8000"})
    assert auth.public_base_url == "http://127.0.0.1:8000"


def test_the_development_mode_is_refused_beyond_loopback(monkeypatch):
    """No issuer means the local user with every staff role: only for an API this machine alone can reach."""
    for host in ("127.0.0.1", "::1", "localhost"):
        monkeypatch.setenv("IOP_API_HOST", host)
        assert load_settings().auth is None
    monkeypatch.setenv("IOP_API_HOST", "10.0.0.5")
    with pytest.raises(ValidationError, match=r"configure \[auth\]"):
        load_settings()


def test_sign_in_secrets_come_from_the_environment(monkeypatch):
    for name, value in (BASE | SIGN_IN).items():
        monkeypatch.setenv(f"IOP_AUTH_{name.upper()}", value)
    auth = load_settings().auth
    assert auth is not None
    assert auth.session_key is not None
    assert auth.session_key.get_secret_value() == SIGN_IN["session_key"]


def test_the_commented_example_in_the_deploy_settings_is_valid(tmp_path, monkeypatch):
    """``deploy/example-service.toml``'s [auth] block, uncommented (the session key from the environment), loads."""
    text = (Path(__file__).parents[2] / "deploy/example-service.toml").read_text()
    block = re.search(r"^# \[auth\]\n((?:# .*\n)+)", text, re.MULTILINE)
    assert block is not None
    lines = [line.removeprefix("# ") for line in block.group(1).splitlines()]
    assert all(line.split(" = ")[0] in AuthSettings.model_fields for line in lines)
    config = tmp_path / "service.toml"
    config.write_text("[auth]\n" + "\n".join(lines) + "\n")
    monkeypatch.setenv("IOP_AUTH_SESSION_KEY", SIGN_IN["session_key"])
    auth = load_settings(config).auth
    assert auth is not None
    assert auth.dashboard_client_id is not None
