"""The referral list's page tokens: only a token the list gave, for the same filters, opens the next page."""

from __future__ import annotations

from referral_service.api import page_tokens

KEY = page_tokens.secret(b"k" * 32)
RAW = b'{"LastStartTime":"2026-12-01T08:00:00Z","LastRunID":"abc"}'


def test_a_sealed_token_opens_the_same_list_and_travels_in_a_url() -> None:
    token = page_tokens.seal(RAW, "screening|None", KEY)
    assert token.replace("-", "").replace("_", "").isalnum()
    assert page_tokens.unseal(token, "screening|None", KEY) == RAW


def test_other_filters_another_key_an_edited_or_made_up_token_open_nothing() -> None:
    token = page_tokens.seal(RAW, "screening|None", KEY)
    edited = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert page_tokens.unseal(token, "waitlisted|None", KEY) is None
    assert page_tokens.unseal(token, "screening|None", page_tokens.secret(b"o" * 32)) is None
    assert page_tokens.unseal(edited, "screening|None", KEY) is None
    assert page_tokens.unseal("bm90LWEtdG9rZW4", "screening|None", KEY) is None
    assert page_tokens.unseal("a", "screening|None", KEY) is None
