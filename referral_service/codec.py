"""Payload encryption for Temporal history: AES-256-GCM, key id in the payload metadata.

Every payload the SDK writes (workflow inputs, activity results, snapshots) passes through here, so the
Temporal server and anyone reading its database see ciphertext only. New payloads use the active key;
payloads written under an older key still decrypt while that key stays in the key ring (rotation).

A payload is zlib-compressed before it is sealed when that makes it smaller: snapshots and activity inputs
are repetitive JSON (a referral, its program, the sessions so far), and history bytes are what a Temporal
cluster stores and ships for every update (bench/RESULTS.md, P3). Payloads written before compression
existed carry the plain encoding and still decode.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import zlib
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/encrypted-aes256gcm"
COMPRESSED_ENCODING = b"binary/zlib-encrypted-aes256gcm"
NONCE_BYTES = 12
# Fast over small: a snapshot shrinks ~5x at level 1 already, and every update pays this on the way out.
ZLIB_LEVEL = 1


class KeyRingError(ValueError):
    """The configured keys are unusable (wrong size, unknown active key, unknown key in a payload)."""


@dataclasses.dataclass(frozen=True)
class KeyRing:
    """Named 256-bit keys and the one new payloads are written with."""

    keys: Mapping[str, bytes]
    active_key_id: str

    def __post_init__(self) -> None:
        if self.active_key_id not in self.keys:
            raise KeyRingError(f"active key id {self.active_key_id!r} is not in the key ring")
        for key_id, key in self.keys.items():
            if len(key) != 32:
                raise KeyRingError(f"key {key_id!r} must be 32 bytes (AES-256), got {len(key)}")

    @property
    def active_key(self) -> bytes:
        return self.keys[self.active_key_id]

    @classmethod
    def from_base64(cls, keys: Mapping[str, str], active_key_id: str) -> KeyRing:
        return cls({kid: base64.b64decode(value) for kid, value in keys.items()}, active_key_id)

    @staticmethod
    def new_key() -> str:
        """A fresh random key, base64 encoded, for configuration files."""
        return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


class EncryptionCodec(PayloadCodec):
    """Encrypts each payload whole (metadata and data), so even the payload's encoding is hidden."""

    def __init__(self, key_ring: KeyRing) -> None:
        self.key_ring = key_ring
        self._ciphers = {kid: AESGCM(key) for kid, key in key_ring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        kid = self.key_ring.active_key_id
        cipher = self._ciphers[kid]
        out = []
        for payload in payloads:
            plain = payload.SerializeToString()
            packed = zlib.compress(plain, ZLIB_LEVEL)
            encoding, content = (COMPRESSED_ENCODING, packed) if len(packed) < len(plain) else (ENCODING, plain)
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, content, kid.encode())
            out.append(Payload(metadata={"encoding": encoding, "encryption-key-id": kid.encode()}, data=nonce + sealed))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            encoding = payload.metadata.get("encoding")
            if encoding not in (ENCODING, COMPRESSED_ENCODING):
                out.append(payload)
                continue
            kid = payload.metadata["encryption-key-id"].decode()
            cipher = self._ciphers.get(kid)
            if cipher is None:
                raise KeyRingError(f"payload was encrypted with key {kid!r}, which is not in the key ring")
            nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
            content = cipher.decrypt(nonce, sealed, kid.encode())
            out.append(Payload.FromString(zlib.decompress(content) if encoding == COMPRESSED_ENCODING else content))
        return out


def data_converter(key_ring: KeyRing) -> DataConverter:
    """The one converter every client and worker uses: pydantic JSON, then encryption."""
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(key_ring))
