"""Cookie values the browser holds but can neither read nor change: JSON sealed with AES-256-GCM.

The key is ``auth.session_key``, shared by every API process, so any of them can finish a sign-in another
began and read a session another made; the cookie's purpose is the associated data, so one kind of cookie
cannot stand in for another.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class CookieSeal:
    def __init__(self, key: bytes) -> None:
        self._cipher = AESGCM(key)

    def seal(self, purpose: str, payload: Mapping[str, Any], *, expires_at: int) -> str:
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps({**payload, "exp": expires_at}, separators=(",", ":")).encode()
        sealed = nonce + self._cipher.encrypt(nonce, plain, purpose.encode())
        return base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")

    def open(self, purpose: str, value: str | None, *, now: float) -> dict[str, Any] | None:
        """The payload, or None when the value is missing, altered, sealed for another purpose or expired."""
        if not value:
            return None
        try:
            sealed = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            plain = self._cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], purpose.encode())
            payload = json.loads(plain)
        except (binascii.Error, ValueError, InvalidTag):
            return None
        if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int) or payload["exp"] <= now:
            return None
        return payload
