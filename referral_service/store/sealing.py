"""Patient details at rest: AES-256-GCM under the payload key ring, bound to their row's key (a sealed value
moved to another row does not open). ``<key id>:<base64 nonce+ciphertext>``; a value under a key the ring no
longer holds opens to None, so its row shows as unreadable instead of failing the page."""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from referral_service.codec import KeyRing

NONCE_BYTES = 12


class Sealer:
    def __init__(self, key_ring: KeyRing) -> None:
        self._active = key_ring.active_key_id
        self._ciphers = {key_id: AESGCM(key) for key_id, key in key_ring.keys.items()}

    def seal(self, plain: bytes, bound_to: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self._active].encrypt(nonce, plain, bound_to.encode())
        return f"{self._active}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, value: str, bound_to: str) -> bytes | None:
        key_id, _, data = value.partition(":")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            return None
        try:
            raw = base64.b64decode(data, validate=True)
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], bound_to.encode())
        except (InvalidTag, binascii.Error, ValueError):
            return None
