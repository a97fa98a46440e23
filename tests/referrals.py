"""The synthetic cast's referral fixtures, made unique per test so tests never see each other's data."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "referrals"
# Values in the fixtures that identify one referral; each test gets its own copy of them.
UNIQUE_VALUES = ("SR-2026-0001", "SYN-MRN-0001", "SYN-ENC-0001")


def referral_bundle(name: str) -> dict[str, Any]:
    """A fixture Bundle with fresh identifier values (same shape, new order number, MRN and encounter)."""
    text = (FIXTURES / f"{name}.json").read_text()
    suffix = uuid.uuid4().hex[:8]
    for placeholder in UNIQUE_VALUES:
        text = text.replace(placeholder, f"{placeholder}-{suffix}")
    bundle: dict[str, Any] = json.loads(text)
    return bundle
