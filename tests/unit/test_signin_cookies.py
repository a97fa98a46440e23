"""The one-time values of a dashboard sign-in and the sealed cookies that carry them."""

import base64
import re
import time

import pytest

from referral_service.api.signin.pkce import LoginAttempt, code_challenge, local_path, new_verifier
from referral_service.api.signin.sealed_cookie import CookieSeal
from referral_service.codec import KeyRing

KEY = base64.b64decode(KeyRing.new_key())


def test_the_code_challenge_is_rfc_7636s_s256():
    """The worked example of RFC 7636 appendix B: a provider computes the same challenge from the verifier."""
    assert (
        code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_each_verifier_is_new_and_within_the_rfcs_alphabet_and_length():
    verifiers = {new_verifier() for _ in range(50)}
    assert len(verifiers) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", verifier) for verifier in verifiers)


def test_each_login_attempt_has_its_own_state_nonce_and_verifier():
    first, second = LoginAttempt.start("/inbox"), LoginAttempt.start("/inbox")
    assert first.next_path == "/inbox"
    assert {first.state, first.nonce, first.verifier}.isdisjoint({second.state, second.nonce, second.verifier})
    assert len({first.state, first.nonce, first.verifier}) == 3


@pytest.mark.parametrize(
    ("asked", "lands"),
    [
        ("/referrals/hapi-test~abc?tab=1", "/referrals/hapi-test~abc?tab=1"),
        ("/inbox", "/inbox"),
        ("https://evil.example/inbox", "/"),
        ("//evil.example/inbox", "/"),
        ("/\\evil.example", "/"),
        ("/inbox\r\nSet-Cookie: x=1", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_sign_in_only_lands_on_this_site(asked, lands):
    """After the provider, the browser goes back to a path here: never another origin (an open redirect)."""
    assert local_path(asked) == lands


def test_a_sealed_cookie_opens_with_its_key_and_purpose_until_it_expires():
    seal = CookieSeal(KEY)
    value = seal.seal("iop_session", {"sub": "carmen", "roles": ["case-manager"]}, expires_at=int(time.time()) + 60)

    assert "carmen" not in value
    assert "case-manager" not in base64.urlsafe_b64decode(value + "==").decode("latin-1")
    opened = seal.open("iop_session", value, now=time.time())
    assert opened is not None
    assert opened["sub"] == "carmen"
    assert seal.open("iop_session", value, now=time.time() + 61) is None, "expired"
    assert seal.open("iop_signin", value, now=time.time()) is None, "sealed for another purpose"
    assert CookieSeal(base64.b64decode(KeyRing.new_key())).open("iop_session", value, now=time.time()) is None


@pytest.mark.parametrize("value", ["", "not base64 !", "AAAA", None])
def test_a_cookie_that_is_not_one_of_ours_does_not_open(value):
    assert CookieSeal(KEY).open("iop_session", value, now=time.time()) is None


def test_a_changed_cookie_does_not_open():
    seal = CookieSeal(KEY)
    value = seal.seal("iop_session", {"sub": "carmen"}, expires_at=int(time.time()) + 60)
    raw = bytearray(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    raw[-20] ^= 0x01
    altered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert seal.open("iop_session", altered, now=time.time()) is None
