"""The API server's limits as the deployment example documents them: the commented ``[server]`` block of
``deploy/example-service.toml`` loads and says what the defaults are, so the example cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

from referral_service.config import load_settings
from referral_service.config.limits import ServerLimits


def test_the_commented_server_limits_in_the_deploy_example_are_the_defaults(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "deploy/example-service.toml").read_text()
    block = re.search(r"^# \[server\]\n((?:# .*\n)+)", text, re.MULTILINE)
    assert block is not None
    lines = [line.removeprefix("# ").partition("#")[0].strip() for line in block.group(1).splitlines()]
    config = tmp_path / "service.toml"
    config.write_text("[server]\n" + "\n".join(lines) + "\n")

    limits = load_settings(config).server

    assert limits == ServerLimits()
    assert {line.split(" = ")[0] for line in lines} == set(ServerLimits.model_fields)
