"""The codec server the Temporal UI calls to show payloads decrypted to authorised users (program admins).

Protocol (https://docs.temporal.io/production-deployment/data-encryption): ``POST /codec/decode`` and
``/codec/encode`` with ``{"payloads": [...]}`` in the protobuf JSON form, answered in the same form. The
browser sends the user's bearer token (the UI's "pass access token" option); CORS admits only the
configured Temporal UI origin.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from referral_service.api.deps import AppState, StateDep
from referral_service.codec import EncryptionCodec, KeyRingError

router = APIRouter(prefix="/codec", tags=["codec server"])
PayloadsJson = dict[str, Any]


@router.post("/decode")
async def decode(services: StateDep, body: PayloadsJson = Body(...)) -> PayloadsJson:  # noqa: B008
    """Decrypt payloads (those not encrypted by us pass through unchanged)."""
    codec = _codec(services)
    try:
        return _to_json(await codec.decode(_from_json(body)))
    except KeyRingError as error:
        raise HTTPException(422, str(error)) from error


@router.post("/encode")
async def encode(services: StateDep, body: PayloadsJson = Body(...)) -> PayloadsJson:  # noqa: B008
    """Encrypt payloads with the active key (the UI encodes what it sends: signal and query arguments)."""
    return _to_json(await _codec(services).encode(_from_json(body)))


def _codec(services: AppState) -> EncryptionCodec:
    codec = services.temporal.data_converter.payload_codec
    return codec if isinstance(codec, EncryptionCodec) else EncryptionCodec(services.settings.key_ring())


def _from_json(body: PayloadsJson) -> list[Payload]:
    try:
        return list(json_format.ParseDict(body, Payloads()).payloads)
    except json_format.ParseError as error:
        raise HTTPException(400, 'the body must be {"payloads": [...]} in Temporal\'s protobuf JSON') from error


def _to_json(payloads: list[Payload]) -> PayloadsJson:
    return json_format.MessageToDict(Payloads(payloads=payloads))
