"""The real-world corpus is consistent with itself: every case loads, names its source, every change and its
expectation; its FHIR is structurally valid (or, for the cases about malformed input, invalid exactly where the
case says); what the EHR is to hold can be PUT into HAPI in order and means the same whichever cases run
first; and each intake rule is shown both taking and refusing a referral. No server: the integration test
drives these cases through the service.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from tests.real_world import (
    CONFIGURED_REFERENCES,
    CORPUS,
    PROGRAM_NPI,
    ROUTES,
    SEEDED,
    TAGS,
    RealWorldCase,
    load_cases,
)

BASE = "http://127.0.0.1:8080/fhir"  # any absolute base stands in for the sending EHR's
CASES = load_cases(BASE)
BY_NAME = {c.name: c for c in CASES}
HAPI_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR's id; HAPI also refuses all-digit client ids
PROGRAM = {"system": PROGRAM_NPI[0], "value": PROGRAM_NPI[1]}
TAKEN = ("accept", "accept-with-warning")


def ids(case: RealWorldCase) -> str:
    return case.name


def references(value: Any) -> Iterator[str]:
    """Every Reference.reference string anywhere in a resource."""
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for key, child in value.items():
            if key != "contained":
                yield from references(child)
    elif isinstance(value, list):
        for child in value:
            yield from references(child)


def service_requests(case: RealWorldCase) -> list[tuple[str | None, dict[str, Any]]]:
    """(fullUrl, ServiceRequest) for the ServiceRequests a submission carries at its top level."""
    if case.submission["resourceType"] == "ServiceRequest":
        return [(None, case.submission)]
    entries = case.submission.get("entry") or []
    return [(e.get("fullUrl"), e["resource"]) for e in entries if e["resource"]["resourceType"] == "ServiceRequest"]


def held_everywhere() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Type/id -> (case, resource) for everything any case puts into the EHR."""
    held: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for case in CASES:
        for resource in case.ehr_holds:
            held[f"{resource['resourceType']}/{resource['id']}"].append((case.name, resource))
        if case.route in ("poll", "subscription"):
            held[f"ServiceRequest/{case.submission['id']}"].append((case.name, case.submission))
    return held


HELD = held_everywhere()


def identifier_keys(resource: dict[str, Any]) -> set[str]:
    return {f"{i.get('system', '')}|{i['value']}" for i in resource.get("identifier") or [] if i.get("value")}


def patients_holding(keys: set[str]) -> set[str]:
    """EHR patients (over the whole corpus: the EHR keeps what every case put there) sharing an identifier."""
    return {
        ref
        for ref, holders in HELD.items()
        if ref.startswith("Patient/") and any(keys & identifier_keys(resource) for _, resource in holders)
    }


def submitted_patient(case: RealWorldCase) -> dict[str, Any]:
    """The patient the (taken, or only) ServiceRequest carries: contained, a Bundle entry, or its identifier."""
    requests = service_requests(case)
    [(full_url, sr)] = [(u, r) for u, r in requests if u in case.expect.taken] if len(requests) > 1 else requests
    reference = sr["subject"].get("reference")
    if reference is None:  # an identifier-only subject: only its identifier is known
        return {"resourceType": "Patient", "identifier": [sr["subject"]["identifier"]]}
    if reference.startswith("#"):
        [found] = [c for c in sr.get("contained") or [] if f"#{c['id']}" == reference]
        return found
    base = full_url.rsplit("/ServiceRequest/", 1)[0] if full_url and "/ServiceRequest/" in full_url else None
    wanted = reference if reference.startswith("urn:") else f"{base}/{reference}"
    [found] = [e["resource"] for e in case.submission["entry"] if e.get("fullUrl") == wanted]
    return found


# ---- every case loads and says what it is -----------------------------------------------------------------


def test_the_corpus_is_large_and_mostly_referrals_the_program_takes():
    outcomes = Counter(c.expect.outcome for c in CASES)
    assert len(CASES) >= 45, outcomes
    taken = outcomes["accept"] + outcomes["accept-with-warning"]
    assert 0.5 <= taken / len(CASES) <= 0.7, outcomes
    assert {c.route for c in CASES} == set(ROUTES)
    assert len({c.source.repository for c in CASES}) >= 8


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_case_names_its_source_its_changes_and_its_expectation(case: RealWorldCase):
    src = case.source
    assert src.ig, case.name
    assert src.version, case.name
    assert src.url.startswith("https://"), case.name
    assert src.form, case.name
    assert re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", src.repository)
    assert re.fullmatch(r"[0-9a-f]{40}", src.commit)
    assert src.paths
    assert all(src.paths)
    assert case.title
    assert case.shows
    assert all(isinstance(note, str) and len(note) > 20 for note in case.adapted)
    assert case.tags <= TAGS, case.tags - TAGS
    assert f"route:{case.route}" in case.tags


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_expectation_is_complete_for_its_outcome_and_route(case: RealWorldCase):
    expect = case.expect
    if case.route == "poll":
        assert expect.status is None  # nothing answers a poll: the outcome is whether it is taken
    elif expect.outcome == "reject":
        assert expect.status in (400, 422), expect
    else:  # several referrals from one submission answer a batch-response (200), one a Task (201)
        assert expect.status == (200 if len(expect.taken) > 1 else 201), expect
    if expect.outcome == "reject":
        assert expect.expressions or expect.any_of or case.route == "poll"
        assert not expect.patient_linked
        assert not expect.taken
    elif expect.outcome == "accept-with-warning":
        assert expect.expressions
        assert not expect.any_of
    else:
        assert not expect.expressions
        assert not expect.any_of
    assert expect.patient_linked == (expect.patient is not None)
    if expect.patient:  # the EHR holds the patient the write-backs must name
        assert expect.patient in {f"{r['resourceType']}/{r['id']}" for r in case.ehr_holds}
    for other in expect.not_patient:
        assert other != expect.patient
    for expression in (*expect.expressions, *expect.any_of, *expect.may_also):
        assert re.fullmatch(r"(ServiceRequest|Bundle|Task)[A-Za-z0-9.\[\]()]*", expression), expression


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_bundles_with_several_service_requests_say_which_are_taken(case: RealWorldCase):
    requests = service_requests(case)
    urls = {url for url, _ in requests}
    if len(requests) > 1 and case.taken_in:
        assert case.expect.taken, "a Bundle with several ServiceRequests must say which are taken"
    assert set(case.expect.taken) <= urls
    several = {t for t in case.tags if t.startswith("several-srs:")}
    assert bool(several) == (len(requests) > 1 and case.submission["resourceType"] == "Bundle"), several
    for url, sr in requests:
        addressed = any(
            p.get("identifier") == PROGRAM or p.get("reference") in CONFIGURED_REFERENCES
            for p in sr.get("performer") or []
        )
        if len(requests) > 1 and case.taken_in:
            assert (url in case.expect.taken) == addressed, url


# ---- the FHIR is what FHIR allows (or malformed exactly where the case says) ----------------------------------


def _fhirpath(prefix: str, loc: tuple[Any, ...]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _validation_errors(resource: dict[str, Any], prefix: str) -> set[str]:
    """The elements fhir.resources R4B refuses, named as the intake names them (entries one by one)."""
    found: set[str] = set()
    shell = {k: v for k, v in resource.items() if k != "entry"}
    for position, item in enumerate(resource.get("entry") or []):
        found |= _validation_errors(item["resource"], f"Bundle.entry[{position}].resource")
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(shell)
    except ValidationError as error:
        found |= {_fhirpath(prefix, err["loc"]) for err in error.errors()}
    return found


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_submission_is_structurally_valid_unless_the_case_is_about_malformed_input(case: RealWorldCase):
    errors = _validation_errors(case.submission, case.submission["resourceType"])
    if "structure:invalid" in case.tags:
        assert errors == set(case.expect.expressions), errors
        assert case.expect.status == 400
    else:
        assert errors == set()


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_what_the_ehr_holds_is_valid_fhir(case: RealWorldCase):
    for resource in case.ehr_holds:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


# ---- what the EHR holds can be put there, in order, and means the same in every case --------------------------


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_ehr_holds_can_be_put_into_hapi_in_order(case: RealWorldCase):
    """Client ids HAPI takes; every literal reference points at something already there (HAPI checks
    references on write and holds no resource of another server); no profile HAPI cannot load."""
    present = set(SEEDED)
    put = [*case.ehr_holds, *([case.submission] if case.route in ("poll", "subscription") else [])]
    for resource in put:
        assert HAPI_ID.fullmatch(resource["id"]), resource["id"]
        assert not resource["id"].isdigit(), resource["id"]
        assert "profile" not in (resource.get("meta") or {}), resource["id"]
        local = {f"#{c['id']}" for c in resource.get("contained") or []}
        for reference in references(resource):
            assert reference in local or reference in present, f"{resource['id']} -> {reference}"
        present.add(f"{resource['resourceType']}/{resource['id']}")
    if case.route == "task":  # the service reads the focus and the patient from the EHR
        for element in ("focus", "for"):
            assert case.submission[element]["reference"] in present


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_ehr_holds_no_service_request_a_poller_would_take(case: RealWorldCase):
    """A poll run takes every active ServiceRequest addressed to the program, whichever case put it there."""
    for resource in case.ehr_holds:
        if resource["resourceType"] == "ServiceRequest":
            assert not resource.get("performer"), resource["id"]


def test_a_resource_the_ehr_holds_is_the_same_in_every_case_that_holds_it():
    for ref, holders in HELD.items():
        first_case, first = holders[0]
        for name, resource in holders[1:]:
            assert resource == first, f"{ref} differs between {first_case} and {name}"


# ---- references: what the EHR holds decides each patient expectation, whatever ran before --------------------


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_patient_expectations_follow_from_what_the_ehr_holds(case: RealWorldCase):
    tags = {t.removeprefix("subject:") for t in case.tags if t.startswith("subject:")}
    if tags & {"relative-held", "relative-not-held"}:
        subjects = {sr["subject"]["reference"] for _, sr in service_requests(case)}
        if case.route == "task":
            subjects = {case.submission["for"]["reference"]}
        for subject in subjects:
            held = {f"{r['resourceType']}/{r['id']}" for r in case.ehr_holds}
            if "relative-held" in tags:
                assert subject in held, subject
            else:  # no case may hold it: the EHR never has it, whatever ran first
                assert subject not in HELD, subject
    matches = {t for t in tags if t.endswith(("-one-match", "-no-match", "-several-matches"))} | (
        tags & {"foreign-base-carried"}
    )
    if not matches:
        return
    keys = identifier_keys(submitted_patient(case))
    holders = patients_holding(keys)
    own = {f"Patient/{r['id']}" for r in case.ehr_holds if r["resourceType"] == "Patient" and keys & identifier_keys(r)}
    if any(t.endswith("-one-match") for t in matches) or "foreign-base-carried" in matches:
        assert holders == own == {case.expect.patient}, holders
    elif any(t.endswith("-no-match") for t in matches):
        assert holders == set(), holders
        assert not case.taken_in or "ServiceRequest.subject" in case.expect.expressions  # the warning
    else:  # several: the case itself puts at least two there
        assert len(own) >= 2, own
        assert not case.taken_in or "ServiceRequest.subject" in case.expect.expressions


def test_referrals_taken_in_are_distinct_referrals():
    """Each accepted case is its own referral: no two share a ServiceRequest id, identifier or fullUrl."""
    seen: dict[str, str] = {}
    for case in CASES:
        if not case.taken_in:
            continue
        for url, sr in service_requests(case):
            if case.expect.taken and url not in case.expect.taken:
                continue
            keys = identifier_keys(sr) | {f"id:{sr['id']}"} if sr.get("id") else identifier_keys(sr)
            keys |= {f"url:{url}"} if url else set()
            for key in keys:
                assert key not in seen, f"{case.name} and {seen.get(key)} share {key}"
                seen[key] = case.name


# ---- each rule is shown taking and refusing ------------------------------------------------------------------

BOTH = {"taken", "refused"}
RULES: dict[str, set[str]] = {
    # performer: resolved before judging, in every style
    "performer:none": BOTH,
    "performer:identifier": BOTH,
    "performer:contained": BOTH,
    "performer:practitionerrole": BOTH,
    "performer:bundle-entry-urn": BOTH,
    "performer:bundle-entry-absolute": BOTH,
    "performer:literal-unresolvable": BOTH,
    "performer:literal-held-program": {"taken"},
    "performer:literal-configured": {"taken"},
    "performer:healthcareservice": {"taken"},
    "performer:literal-held-other": {"refused"},
    "performer:literal-held-unidentified": {"refused"},
    # code filter
    "code:referral": {"taken"},
    "code:hcpcs": {"taken"},
    "code:unrecognised": BOTH,
    "code:none": BOTH,
    "code:loinc": {"refused"},
    "code:lab-category": {"refused"},
    "code:imaging-category": {"refused"},
    "code:dnr": {"refused"},
    # keys
    "identifier:system": BOTH,
    "identifier:no-system": BOTH,
    "identifier:none": BOTH,
    # several ServiceRequests in one Bundle
    "several-srs:one-to-program": {"taken"},
    "several-srs:two-to-program": {"taken"},
    "several-srs:none-to-program": {"refused"},
    "several-srs:two-conflicting": {"refused"},
    # references
    "subject:relative-held": BOTH,
    "subject:relative-not-held": {"refused"},
    "subject:urn-one-match": {"taken"},
    "subject:urn-no-match": BOTH,
    "subject:urn-several-matches": {"taken"},
    "subject:contained-one-match": {"taken"},
    "subject:contained-no-match": {"taken"},
    "subject:contained-several-matches": {"taken"},
    "subject:identifier-one-match": {"taken"},
    "subject:foreign-base-carried": {"taken"},
    "subject:foreign-base-not-carried": {"refused"},
    "fullurl:urn-uuid": BOTH,
    "fullurl:absolute-foreign": BOTH,
    "fullurl:absolute-source-base": BOTH,
    # everything else as today
    "status:not-active": {"refused"},
    "structure:invalid": {"refused"},
    **{f"route:{route}": BOTH for route in ROUTES},
}


@pytest.mark.parametrize(("tag", "needed"), sorted(RULES.items()), ids=sorted(RULES))
def test_each_rule_is_shown_with_the_outcomes_it_can_have(tag: str, needed: set[str]):
    shown = {"taken" if c.taken_in else "refused" for c in CASES if tag in c.tags}
    assert needed <= shown, f"{tag}: needs {sorted(needed)}, corpus shows {sorted(shown)}"


def test_every_source_is_used_for_both_outcomes():
    by_source: dict[str, set[str]] = defaultdict(set)
    for case in CASES:
        by_source[case.source.repository].add("taken" if case.taken_in else "refused")
    assert all(outcomes == BOTH for outcomes in by_source.values()), by_source


def test_the_source_base_placeholder_is_replaced_where_a_case_uses_it():
    case = BY_NAME["bser-message-from-sender"]
    assert all(e["fullUrl"].startswith(f"{BASE}/") for e in case.submission["entry"])
    raw = load_cases()
    assert all(
        "{{SOURCE_BASE}}/" in e["fullUrl"] for e in next(c for c in raw if c.name == case.name).submission["entry"]
    )


def test_the_committed_cases_and_readme_table_are_what_make_corpus_writes():
    """Nobody edits a case by hand and leaves its generator, or the README's table, behind."""
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    assert spec is not None
    assert spec.loader is not None
    make_corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_corpus)
    files = make_corpus.case_files()
    on_disk = {
        str(path.relative_to(CORPUS)): path.read_text()
        for path in CORPUS.glob("*/*.json")
        if not path.parent.name.startswith("_")
    }
    assert sorted(on_disk) == sorted(files)
    assert [name for name in files if on_disk[name] != files[name]] == []
    readme = (CORPUS / "README.md").read_text()
    assert make_corpus.with_case_table(readme) == readme
