"""Page tokens of the referral list: the read model's offset (or, for failed workflows, the visibility store's
own token), signed together with the filters.

A token the list did not give, or one given for other filters, is refused at once instead of reaching the
visibility store, which answers a malformed one only after the client's retries (seconds) with an error
that names nothing the caller can act on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SECRET_LABEL = b"referral-list-page-token"
MAC_BYTES = 16


def secret(codec_key: bytes) -> bytes:
    """Derived from the payload codec's active key (never the key itself), so every API process agrees."""
    return hmac.new(codec_key, SECRET_LABEL, hashlib.sha256).digest()


def seal(raw: bytes, filters: str, key: bytes) -> str:
    return base64.urlsafe_b64encode(_mac(raw, filters, key) + raw).decode().rstrip("=")


def unseal(token: str, filters: str, key: bytes) -> bytes | None:
    """The visibility store's token, or None when ``token`` is not one ``seal`` made for these filters."""
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    mac, raw = sealed[:MAC_BYTES], sealed[MAC_BYTES:]
    return raw if raw and hmac.compare_digest(mac, _mac(raw, filters, key)) else None


def _mac(raw: bytes, filters: str, key: bytes) -> bytes:
    return hmac.new(key, filters.encode() + b"\0" + raw, hashlib.sha256).digest()[:MAC_BYTES]
