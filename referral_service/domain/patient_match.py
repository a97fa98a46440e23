"""Keys that say "probably the same patient" without saying who the patient is.

Intake flags a referral whose patient matches an open referral by an identifier (system and value) or by
name plus birth date. The keys are keyed hashes (HMAC-SHA256), so the search attribute that carries them
holds no PHI: without the secret nobody can test a guessed name or MRN against them.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Iterable

from referral_service.domain.referral import PatientDetails

KEY_CHARS = 32  # 128 bits of the HMAC: collisions are out of reach, the attribute stays short
SECRET_LABEL = b"patient-match"
NAME_SEARCH_LABEL = b"name-search"


def match_secret(codec_key: bytes) -> bytes:
    """The matching secret, derived from the payload codec's active key (never the key itself).

    Rotation caveat: keys made under one codec key never equal keys made under the next, so a referral
    matches only open referrals received under the same active key. Acceptable: rotations are rare, the
    check is a hint for the intake coordinator, not a merge, and it needs no other secret to manage.
    """
    return hmac.new(codec_key, SECRET_LABEL, hashlib.sha256).digest()


def match_keys(patient: PatientDetails, secret: bytes) -> list[str]:
    """One key per patient identifier (``id:``) and one for name plus birth date (``nb:``), when present."""
    texts = [f"id:{identifier.system}|{identifier.value}" for identifier in patient.identifiers if identifier.value]
    family, given = _normalized(patient.family or ""), _normalized(patient.given[0] if patient.given else "")
    if family and given and patient.birth_date is not None:
        texts.append(f"nb:{family}|{given}|{patient.birth_date.isoformat()}")
    keys = [hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()[:KEY_CHARS] for text in texts]
    return sorted(set(keys))


def name_search_secret(codec_key: bytes) -> bytes:
    """The read model's name-search secret, derived like ``match_secret`` but apart from it."""
    return hmac.new(codec_key, NAME_SEARCH_LABEL, hashlib.sha256).digest()


def name_search_keys(names: Iterable[str], secret: bytes) -> list[str]:
    """One keyed hash per word of the names ("Mary Ann" is two), so a search by any whole word finds them."""
    words = {_normalized(word) for name in names for word in name.split()}
    return sorted(hmac.new(secret, word.encode(), hashlib.sha256).hexdigest()[:KEY_CHARS] for word in words if word)


def _normalized(name: str) -> str:
    """Case, accents, spaces and punctuation removed: "José  María" and "jose maria" agree."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch) and ch.isalnum()).casefold()
