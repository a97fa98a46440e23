"""Patient match keys: equal for the same patient, unequal across secrets, and free of patient data."""

from __future__ import annotations

from datetime import date

from referral_service.domain.patient_match import KEY_CHARS, match_keys, match_secret
from referral_service.domain.referral import Identifier, PatientDetails, ResourceRef

SECRET = match_secret(b"k" * 32)
MRN = Identifier(system="urn:oid:2.16.840.1.113883.19.5", value="SYN-MRN-0001")


def _patient(
    *,
    identifiers: list[Identifier] | None = None,
    family: str | None = "Lovelace",
    given: list[str] | None = None,
    birth_date: date | None = date(1985, 12, 10),
) -> PatientDetails:
    return PatientDetails(
        ref=ResourceRef(resource_type="Patient", id="p1"),
        identifiers=identifiers or [],
        family=family,
        given=["Ada", "Augusta"] if given is None else given,
        birth_date=birth_date,
    )


def test_same_identifier_gives_the_same_key_whatever_the_name():
    first = match_keys(_patient(identifiers=[MRN]), SECRET)
    other_name = match_keys(_patient(identifiers=[MRN], family="Byron", birth_date=None), SECRET)

    assert len(first) == 2  # the identifier and name plus birth date
    assert len(other_name) == 1
    assert set(other_name) < set(first)


def test_keys_are_truncated_hex():
    for key in match_keys(_patient(identifiers=[MRN]), SECRET):
        assert len(key) == KEY_CHARS
        int(key, 16)


def test_identifier_system_is_part_of_the_key():
    other_system = Identifier(system="urn:other-hospital", value=MRN.value)

    assert match_keys(_patient(identifiers=[MRN], family=None), SECRET) != match_keys(
        _patient(identifiers=[other_system], family=None), SECRET
    )


def test_a_different_secret_gives_different_keys():
    patient = _patient(identifiers=[MRN])
    other_secret = match_secret(b"j" * 32)

    assert other_secret != SECRET
    assert not set(match_keys(patient, SECRET)) & set(match_keys(patient, other_secret))


def test_name_and_birth_date_match_across_case_accents_and_whitespace():
    plain = match_keys(_patient(family="Lopez Garcia", given=["Jose Maria"]), SECRET)
    spelt = match_keys(_patient(family="  LÓPEZ  garcía ", given=["josé\tmaría", "Other"]), SECRET)

    assert plain == spelt
    assert len(plain) == 1


def test_a_different_birth_date_or_name_does_not_match():
    ada = match_keys(_patient(), SECRET)

    assert match_keys(_patient(birth_date=date(1985, 12, 11)), SECRET) != ada
    assert match_keys(_patient(given=["Ava"]), SECRET) != ada


def test_no_name_key_without_birth_date_or_name():
    assert match_keys(_patient(birth_date=None), SECRET) == []
    assert match_keys(_patient(family=None), SECRET) == []
    assert match_keys(_patient(given=[]), SECRET) == []
    assert len(match_keys(_patient(identifiers=[MRN], birth_date=None), SECRET)) == 1


def test_keys_carry_no_patient_data():
    patient = _patient(identifiers=[MRN])
    phi = ["SYN-MRN-0001", "Lovelace", "Ada", "Augusta", "1985-12-10", "19851210"]

    text = " ".join(match_keys(patient, SECRET))

    assert text.islower()  # hex digits only, so no name (capitalised) can hide in it by chance
    assert [value for value in phi if value in text] == []
