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
