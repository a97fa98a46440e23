"""Bearer tokens: a JWT from the configured OpenID Connect issuer, checked for signature (a key from the
issuer's JWKS), issuer, audience, expiry and this program, and read into the caller's roles."""

from __future__ import annotations

import asyncio
import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from referral_service.config.auth import AuthSettings

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]  # asymmetric only: no shared secrets


class Role(StrEnum):
    INTAKE_COORDINATOR = "intake-coordinator"
    CLINICIAN = "clinician"
    CASE_MANAGER = "case-manager"
    PROGRAM_ADMIN = "program-admin"
    REFERRING_SYSTEM = "referring-system"


_ROLE_NAMES = frozenset(role.value for role in Role)


@dataclass(frozen=True)
class Principal:
    """Who is calling. ``source`` is set for a referring system: the only source whose referrals it may touch."""

    subject: str
    roles: frozenset[Role]
    source: str | None = None


# The embedded stack and the tests run without an issuer, on loopback only (``Settings`` enforces that).
LOCAL_USER = Principal(subject="local", roles=frozenset(Role) - {Role.REFERRING_SYSTEM})


@dataclass(frozen=True)
class VerifiedToken:
    principal: Principal
    expires_at: int  # the token's ``exp``, seconds since the epoch


class TokenRejected(Exception):
    """The token is missing or not acceptable; the message says why without echoing the token."""


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        if settings.jwks_file is not None:
            self._keys: jwt.PyJWKSet | None = jwt.PyJWKSet.from_json(settings.jwks_file.read_text())
            self._client: jwt.PyJWKClient | None = None
        else:
            self._keys = None
            self._client = jwt.PyJWKClient(str(settings.jwks_url), cache_keys=True, lifespan=300, timeout=5)

    async def principal(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenRejected("a bearer token is required (Authorization: Bearer <token>)")
        return (await self.access_token(token.strip())).principal

    async def access_token(self, token: str) -> VerifiedToken:
        """Every check a bearer token gets: the dashboard's sign-in holds its access token to the same."""
        claims = await self._claims(token, audience=self._settings.audience)
        programs = _strings(claims.get("program"))
        if programs is None or self._settings.program not in programs:
            raise TokenRejected(f"the token is not for program {self._settings.program!r}")
        roles = _strings(claims.get(self._settings.roles_claim, []), single=False)
        if roles is None:
            raise TokenRejected(f"the token's {self._settings.roles_claim!r} claim is not a list of role names")
        source, expires_at = claims.get("source"), claims["exp"]
        if not (source is None or isinstance(source, str)):
            raise TokenRejected("the token's 'source' claim is not a source id")
        if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
            raise TokenRejected("the token's 'exp' claim is not a time")
        known = frozenset(Role(r) for r in roles if r in _ROLE_NAMES)
        principal = Principal(subject=str(claims["sub"]), roles=known, source=source)
        return VerifiedToken(principal=principal, expires_at=int(expires_at))

    async def id_token(self, token: str, *, client_id: str, nonce: str) -> None:
        """An OpenID Connect id_token for ``client_id`` from this issuer, bound to the sign-in's ``nonce``."""
        claims = await self._claims(token, audience=client_id)
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
            raise TokenRejected("the id_token's nonce does not match this sign-in")

    async def _claims(self, token: str, *, audience: str) -> dict[str, Any]:
        try:
            key = await self._signing_key(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=_algorithms_for(key),
                audience=audience,
                issuer=self._settings.issuer,
                leeway=self._settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise TokenRejected("the token has expired") from error
        except jwt.PyJWTError as error:
            raise TokenRejected(f"the token is not acceptable: {type(error).__name__}") from error
        except (TypeError, ValueError) as error:  # a shape PyJWT did not foresee: still the caller's fault
            raise TokenRejected(f"the token is not acceptable: malformed ({type(error).__name__})") from error
        return claims

    async def _signing_key(self, token: str) -> jwt.PyJWK:
        if self._client is not None:  # fetches the JWKS over the network (cached): off the event loop
            return await asyncio.to_thread(self._client.get_signing_key_from_jwt, token)
        assert self._keys is not None
        kid = jwt.get_unverified_header(token).get("kid")
        for key in self._keys.keys:
            if key.key_id == kid:
                return key
        raise jwt.InvalidKeyError("no key in the JWKS matches the token's kid")


def _algorithms_for(key: jwt.PyJWK) -> list[str]:
    """What a token signed with ``key`` may say it used: the RSA family for an RSA key, an EC key's curve's
    own. The token's header alone never picks the algorithm (an EC algorithm naming an RSA key, ``none``,
    HMAC with the public key as its secret): anything else is refused before a signature is checked."""
    if key.key_type == "RSA":
        return [alg for alg in ALGORITHMS if alg[:2] in ("RS", "PS")]
    return [key.algorithm_name] if key.algorithm_name in ALGORITHMS else []


def _strings(value: Any, *, single: bool = True) -> list[str] | None:
    """A claim holding a list of strings (or, with ``single``, one string) as a list; ``None`` for any other shape."""
    if single and isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None
