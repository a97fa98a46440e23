"""Secrets every process derives from the payload key ring the client encrypts with (patient match keys, the
read model's seal and name search), so all processes agree without another secret to hand out."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine
from temporalio.client import Client

from referral_service.codec import EncryptionCodec, KeyRing
from referral_service.domain import patient_match
from referral_service.store.referrals import ReferralRows
from referral_service.store.sealing import Sealer


def patient_match_secret(client: Client, fallback: Callable[[], KeyRing]) -> bytes:
    """Derived from the active codec key (``active_codec_key``), so every process makes the same match keys."""
    return patient_match.match_secret(active_codec_key(client, fallback))


def active_codec_key(client: Client, fallback: Callable[[], KeyRing]) -> bytes:
    """The active key of the ring the client encrypts payloads with (``connect`` gives every client one;
    ``fallback`` serves a client without): the one secret every process shares, to derive others from."""
    return codec_key_ring(client, fallback).active_key


def codec_key_ring(client: Client, fallback: Callable[[], KeyRing]) -> KeyRing:
    codec = client.data_converter.payload_codec
    return codec.key_ring if isinstance(codec, EncryptionCodec) else fallback()


def referral_rows(client: Client, database: Engine) -> ReferralRows:
    """The read model in ``database``, its patient details sealed under the client's payload key ring."""
    ring = codec_key_ring(client, unencrypted)
    return ReferralRows(database, Sealer(ring), patient_match.name_search_secret(ring.active_key))


def unencrypted() -> KeyRing:
    """The fallback for a client that must already encrypt (a worker's): its absence is a programming error."""
    raise RuntimeError("the Temporal client must encrypt payloads: connect with temporal_client.connection.connect")
