"""A stand-in for a production EHR's SMART authorization server, and one protected FHIR resource.

``POST /token`` checks a Backend Services request as an EHR would (grant type, assertion type, the signature
against the key registered for the ``kid``, ``aud`` = this token URL, ``iss`` = ``sub`` = the client id,
``exp`` at most 5 minutes ahead, a ``jti`` never seen before) and issues an opaque token; ``GET
/fhir/metadata`` answers only a bearer it issued (``401`` otherwise); ``/fhir/.well-known/smart-configuration``
names the token endpoint. Served by uvicorn in a thread, on a free loopback port.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.loopback_server import serving_asgi

CLIENT_ID = "iop-referral-service"
SCOPE = "system/ServiceRequest.rs system/Task.cru system/CareTeam.cru"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CAPABILITY_STATEMENT = {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance"}
# The service's signing keys, made once per test session, by algorithm, with the kid the EHR knows them by.
KEYS: dict[str, Any] = {
    "RS384": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ES384": ec.generate_private_key(ec.SECP384R1()),
}
KEY_IDS = {"RS384": "iop-rsa-1", "ES384": "iop-ec-1"}


def registered_keys() -> dict[str, Any]:
    """The public halves, by kid: what the EHR registered for the service."""
    return {KEY_IDS[algorithm]: key.public_key() for algorithm, key in KEYS.items()}


def write_pem(folder: Path, key: Any, name: str = "client-key.pem") -> Path:
    path = folder / name
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def smart_auth(folder: Path, algorithm: str = "RS384", **overrides: Any) -> dict[str, Any]:
    """A source's ``auth`` table as a deployment writes it, with the key for ``algorithm`` under ``folder``."""
    return {
        "kind": "smart-backend",
        "client_id": CLIENT_ID,
        "private_key_file": str(write_pem(folder, KEYS[algorithm], f"{algorithm}.pem")),
        "key_id": KEY_IDS[algorithm],
        "algorithm": algorithm,
        "scope": SCOPE,
    } | overrides


@dataclass
class TokenServer:
    """What the EHR registered (``keys`` by ``kid``) and what it saw; tests read and steer it."""

    keys: dict[str, Any] = field(default_factory=registered_keys)
    expires_in: int = 300
    scope: str | None = None  # granted scope; the requested one when None
    token_status: int | None = None  # answer every token request with this status instead
    honour_tokens: bool = True  # False: the FHIR side answers 401 to every token
    base_url: str = ""
    assertions: list[str] = field(default_factory=list)  # every assertion received, verified or not
    accepted: list[dict[str, Any]] = field(default_factory=list)  # the claims of each verified one
    refusals: list[str] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)  # tokens still valid (tests revoke by clearing it)
    bearers: list[str | None] = field(default_factory=list)  # the Authorization header of each FHIR request
    discoveries: int = 0

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def fhir_base(self) -> str:
        return f"{self.base_url}/fhir"

    async def token(self, request: Request) -> Response:
        form = {name: values[0] for name, values in parse_qs((await request.body()).decode()).items()}
        if self.token_status is not None:
            return JSONResponse({"error": "temporarily_unavailable"}, status_code=self.token_status)
        self.assertions.append(form.get("client_assertion", ""))
        problem = self._problem(form)
        if problem is not None:
            self.refusals.append(problem)
            return JSONResponse({"error": "invalid_client", "error_description": problem}, status_code=400)
        token = secrets.token_urlsafe(24)
        self.issued.add(token)
        granted = self.scope if self.scope is not None else form["scope"]
        return JSONResponse(
            {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in, "scope": granted}
        )

    def _problem(self, form: dict[str, str]) -> str | None:
        """Why this request does not authenticate the client, or None."""
        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != ASSERTION_TYPE:
            return "grant type or assertion type"
        if not form.get("scope"):
            return "no scope"
        assertion = form.get("client_assertion", "")
        header = jwt.get_unverified_header(assertion)
        key = self.keys.get(header.get("kid", ""))
        if key is None or header.get("alg") not in ("RS384", "ES384"):
            return "unknown kid or algorithm"
        try:
            claims = jwt.decode(
                assertion,
                key,
                algorithms=[header["alg"]],
                audience=self.token_url,
                issuer=CLIENT_ID,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
            )
        except jwt.InvalidTokenError as error:
            return f"assertion: {type(error).__name__}"
        if claims["sub"] != claims["iss"] or claims["exp"] > time.time() + 300:
            return "sub differs from iss, or exp beyond 5 minutes"
        if any(seen["jti"] == claims["jti"] for seen in self.accepted):
            return "jti reused"
        self.accepted.append(claims | {"header": header})
        return None

    async def metadata(self, request: Request) -> Response:
        authorization = request.headers.get("Authorization")
        self.bearers.append(authorization)
        valid = authorization is not None and authorization.removeprefix("Bearer ") in self.issued
        if not (valid and self.honour_tokens):
            return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return JSONResponse(CAPABILITY_STATEMENT, media_type="application/fhir+json")

    async def smart_configuration(self, _: Request) -> Response:
        self.discoveries += 1
        return JSONResponse({"token_endpoint": self.token_url, "grant_types_supported": ["client_credentials"]})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route("/fhir/metadata", self.metadata),
                Route("/fhir/.well-known/smart-configuration", self.smart_configuration),
            ]
        )


@contextlib.contextmanager
def serving(server: TokenServer) -> Iterator[TokenServer]:
    """``server`` on a free loopback port (``base_url`` set) until the block ends."""
    with serving_asgi(server.app()) as base_url:
        server.base_url = base_url
        yield server
