"""The payload key ring as configured: AES-256 keys (base64) by key id, one of them active."""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from referral_service.codec import KeyRing

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "placeholder", "xxx"})


class CodecSettings(BaseModel):
    """AES-256 keys (base64) by key id; ``active`` names the key new payloads use."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)  # keys are secrets

    active: str
    keys: dict[str, str]

    @field_validator("keys")
    @classmethod
    def _real_keys(cls, keys: dict[str, str]) -> dict[str, str]:
        for key_id, value in keys.items():
            if value.strip().lower() in PLACEHOLDER_SECRETS or not is_aes256_key(value):
                raise ValueError(
                    f"codec key {key_id!r} is a placeholder or not a base64 AES-256 key: set a real key "
                    "(python -c 'from referral_service.codec import KeyRing; print(KeyRing.new_key())')"
                )
        return keys

    @model_validator(mode="after")
    def _active_is_a_key(self) -> CodecSettings:
        if self.active not in self.keys:
            raise ValueError(f"codec active key {self.active!r} is not among the keys {sorted(self.keys)}")
        return self

    def key_ring(self) -> KeyRing:
        return KeyRing.from_base64(self.keys, self.active)


def is_aes256_key(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except binascii.Error:
        return False
