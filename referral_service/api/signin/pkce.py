"""Proof Key for Code Exchange (RFC 7636, S256) and the other one-time values of a sign-in."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass


def new_verifier() -> str:
    """86 characters of the unreserved alphabet (RFC 7636 allows 43 to 128), 512 bits of randomness."""
    return secrets.token_urlsafe(64)


def code_challenge(verifier: str) -> str:
    """``BASE64URL(SHA256(verifier))`` without padding: what the authorization request carries."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def local_path(candidate: str | None) -> str:
    """Where to land after sign-in: a path on this site, never another origin (an open redirect)."""
    if not candidate or not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return "/"
    if any(ord(char) < 0x21 or char == "\\" for char in candidate):
        return "/"
    return candidate


@dataclass(frozen=True)
class LoginAttempt:
    """One sign-in between ``/auth/login`` and ``/auth/callback``: kept in the sealed attempt cookie."""

    state: str  # binds the callback to this browser (against login CSRF)
    nonce: str  # binds the id_token to this sign-in (against a replayed token)
    verifier: str  # PKCE: only this browser's callback can redeem the code
    next_path: str

    @classmethod
    def start(cls, next_path: str | None) -> LoginAttempt:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=new_verifier(),
            next_path=local_path(next_path),
        )
