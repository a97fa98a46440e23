"""Payload encryption: what Temporal stores is ciphertext; rotation keeps old histories readable."""

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload

from referral_service.codec import (
    COMPRESSED_ENCODING,
    ENCODING,
    NONCE_BYTES,
    EncryptionCodec,
    KeyRing,
    KeyRingError,
)

SECRET = b'{"family": "Testpatient", "birthDate": "1984-02-29"}'


def _payload() -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=SECRET)


async def test_encoded_payload_hides_data_and_encoding_and_names_its_key():
    """Neither the data nor its original encoding is visible; the key id is, for rotation."""
    ring = KeyRing.from_base64({"k1": KeyRing.new_key()}, "k1")
    [sealed] = await EncryptionCodec(ring).encode([_payload()])
    assert b"Testpatient" not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.SerializeToString()
    assert sealed.metadata["encryption-key-id"] == b"k1"
    assert await EncryptionCodec(ring).decode([sealed]) == [_payload()]


async def test_rotation_new_writes_use_new_key_and_old_payloads_still_decrypt():
    """After adding k2 as active, k1 payloads decrypt and new payloads name k2."""
    k1, k2 = KeyRing.new_key(), KeyRing.new_key()
    [old] = await EncryptionCodec(KeyRing.from_base64({"k1": k1}, "k1")).encode([_payload()])
    rotated = EncryptionCodec(KeyRing.from_base64({"k1": k1, "k2": k2}, "k2"))
    [new] = await rotated.encode([_payload()])
    assert new.metadata["encryption-key-id"] == b"k2"
    assert await rotated.decode([old, new]) == [_payload(), _payload()]


async def test_a_payload_under_a_removed_key_is_a_clear_error():
    """Dropping a key that history still uses fails loudly, naming the key id."""
    [old] = await EncryptionCodec(KeyRing.from_base64({"k1": KeyRing.new_key()}, "k1")).encode([_payload()])
    other = EncryptionCodec(KeyRing.from_base64({"k2": KeyRing.new_key()}, "k2"))
    with pytest.raises(KeyRingError, match="'k1'"):
        await other.decode([old])


def test_key_ring_refuses_short_keys_and_unknown_active_key():
    """A 128-bit key or an active id missing from the ring is refused at start-up."""
    with pytest.raises(KeyRingError, match="32 bytes"):
        KeyRing({"k1": b"0" * 16}, "k1")
    with pytest.raises(KeyRingError, match="not in the key ring"):
        KeyRing({"k1": b"0" * 32}, "k2")


async def test_repetitive_payloads_are_compressed_before_sealing_and_old_ones_still_decode():
    """A snapshot-like payload is stored several times smaller; a payload sealed before compression existed
    (plain encrypted encoding) still decodes, so recorded histories stay readable."""
    ring = KeyRing.from_base64({"k1": KeyRing.new_key()}, "k1")
    codec = EncryptionCodec(ring)
    snapshot = Payload(metadata={"encoding": b"json/plain"}, data=b'{"session": "group", "minutes": 180}' * 200)
    [sealed] = await codec.encode([snapshot])
    assert sealed.metadata["encoding"] == COMPRESSED_ENCODING
    assert len(sealed.data) * 5 < len(snapshot.data)
    nonce = os.urandom(NONCE_BYTES)
    legacy = Payload(
        metadata={"encoding": ENCODING, "encryption-key-id": b"k1"},
        data=nonce + AESGCM(ring.keys["k1"]).encrypt(nonce, snapshot.SerializeToString(), b"k1"),
    )
    assert await codec.decode([sealed, legacy]) == [snapshot, snapshot]


async def test_a_payload_compression_cannot_shrink_is_sealed_as_it_is():
    """Random bytes do not compress: they are sealed under the plain encrypted encoding."""
    ring = KeyRing.from_base64({"k1": KeyRing.new_key()}, "k1")
    noise = Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(64))
    [sealed] = await EncryptionCodec(ring).encode([noise])
    assert sealed.metadata["encoding"] == ENCODING
    assert await EncryptionCodec(ring).decode([sealed]) == [noise]
