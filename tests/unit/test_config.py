"""Settings refuse what would fail later: placeholder secrets, malformed URLs, duplicate sources."""

import pytest
from pydantic import ValidationError

from referral_service.config import load_settings


def test_placeholder_codec_key_is_refused(tmp_path):
    """A config still holding 'changeme' as a key does not start."""
    config = tmp_path / "service.toml"
    config.write_text('[codec]\nactive = "k1"\n[codec.keys]\nk1 = "changeme"\n')
    with pytest.raises(ValidationError, match="placeholder"):
        load_settings(config)


def test_malformed_source_url_is_refused(tmp_path):
    """A referring EHR must have an absolute http(s) FHIR base URL."""
    config = tmp_path / "service.toml"
    config.write_text('[[sources]]\nid = "acme"\nbase_url = "not a url"\n')
    with pytest.raises(ValidationError, match="base_url"):
        load_settings(config)


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    """IOP_* variables win over the TOML file."""
    config = tmp_path / "service.toml"
    config.write_text('task_queue = "from-file"\n')
    monkeypatch.setenv("IOP_TASK_QUEUE", "from-env")
    assert load_settings(config).task_queue == "from-env"


def test_an_api_reachable_from_other_machines_needs_auth(monkeypatch):
    """Binding beyond loopback without an issuer would open PHI to the network: refused at start-up."""
    monkeypatch.setenv("IOP_API_HOST", "0.0.0.0")  # noqa: S104 - the point of the test
    with pytest.raises(ValidationError, match=r"configure \[auth\]"):
        load_settings()
    monkeypatch.setenv("IOP_AUTH_ISSUER", "https://login.example.org/realms/iop")
    monkeypatch.setenv("IOP_AUTH_AUDIENCE", "iop-referral-service")
    monkeypatch.setenv("IOP_AUTH_JWKS_URL", "https://login.example.org/realms/iop/certs")
    monkeypatch.setenv("IOP_AUTH_PROGRAM", "iop-main")
    assert load_settings().auth is not None


def test_a_shared_database_needs_a_shared_key_ring(monkeypatch):
    """On PostgreSQL several processes share the rows: each making its own dev key would seal what the
    others cannot open."""
    monkeypatch.delenv("IOP_CODEC_KEYS", raising=False)
    monkeypatch.setenv("IOP_DATABASE_URL", "postgresql+psycopg://iop@db/iop_service")
    with pytest.raises(ValidationError, match="key ring they all use"):
        load_settings()


def test_source_limits_have_defaults_and_every_client_of_a_source_shares_them(tmp_path):
    config = tmp_path / "service.toml"
    config.write_text(
        '[[sources]]\nid = "a"\nbase_url = "https://a.example/fhir"\n'
        '[[sources]]\nid = "b"\nbase_url = "https://b.example/fhir"\n'
        "[sources.limits]\nmax_in_flight = 2\nper_second = 5\nshared = true\n"
    )
    a, b = load_settings(config).sources
    assert (a.limits.max_in_flight, a.limits.per_second, a.limits.shared) == (8, 50.0, False)
    assert (b.limits.max_in_flight, b.limits.per_second, b.limits.shared) == (2, 5.0, True)
    assert b.connection().throttle is b.connection(timeout_seconds=3).throttle is b.throttle
    assert b.connection(timeout_seconds=3, throttled=False).throttle is None  # /readyz's probe waits on nobody
    assert b.throttle.limits.shared
    assert b.throttle is not a.throttle
    config.write_text(
        '[[sources]]\nid = "a"\nbase_url = "https://a.example/fhir"\n[sources.limits]\nmax_in_flight = 0\n'
    )
    with pytest.raises(ValidationError, match="max_in_flight"):
        load_settings(config)


def test_a_named_settings_file_that_cannot_be_read_stops_the_start(tmp_path, monkeypatch):
    """--config or IOP_CONFIG naming a missing file is an error, never the built-in defaults."""
    with pytest.raises(FileNotFoundError, match=r"missing\.toml"):
        load_settings(tmp_path / "missing.toml")
    monkeypatch.setenv("IOP_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match=r"missing\.toml"):
        load_settings()


def test_a_nested_setting_comes_from_its_variable_and_the_file_fills_the_rest(tmp_path, monkeypatch):
    """IOP_AUTH_JWKS_URL is auth.jwks_url (one level down, its own underscores kept), merged with [auth]."""
    config = tmp_path / "service.toml"
    config.write_text('[auth]\nissuer = "https://login.example.org"\naudience = "iop"\nprogram = "iop-main"\n')
    monkeypatch.setenv("IOP_AUTH_JWKS_URL", "https://login.example.org/certs")
    monkeypatch.setenv("IOP_AUTH_AUDIENCE", "iop-from-env")
    auth = load_settings(config).auth
    assert auth is not None
    assert str(auth.jwks_url) == "https://login.example.org/certs"
    assert (auth.issuer, auth.audience) == ("https://login.example.org", "iop-from-env")
