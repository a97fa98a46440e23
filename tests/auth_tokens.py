"""Bearer tokens for tests: an RSA key made per test session, its JWKS file, and tokens signed with it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from referral_service.config.auth import AuthSettings

ISSUER = "https://login.example-health.org/realms/iop"
AUDIENCE = "iop-referral-service"
PROGRAM = "iop-main"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
STRANGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not in the JWKS


def auth_settings(folder: Path) -> AuthSettings:
    """Auth against ``KEY``, its public half written as a JWKS file under ``folder``."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key())) | {"kid": "k1", "use": "sig"}
    jwks = folder / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    return AuthSettings(issuer=ISSUER, audience=AUDIENCE, jwks_file=jwks, program=PROGRAM)


def token(*roles: str, key: Any = KEY, **claims: Any) -> dict[str, str]:
    """An Authorization header for a token with these roles; ``claims`` override the defaults."""
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "iat": now, "exp": now + 300, "program": PROGRAM}
    body |= {"roles": list(roles)} | claims
    return {"Authorization": "Bearer " + jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})}
