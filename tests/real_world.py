"""The real-world corpus (tests/fixtures/real_world): referrals built from published implementation-guide and
vendor examples, each with what the source EHR holds beforehand and the outcome a hospital should get.

``load_cases(base)`` reads every case folder and puts ``base`` (the test EHR's FHIR base) wherever a case says
``{{SOURCE_BASE}}``: a fullUrl on the sending EHR's own server. README.md there describes the layout and the rules
the expectations follow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

CORPUS = Path(__file__).parent / "fixtures" / "real_world"
SOURCE_BASE = "{{SOURCE_BASE}}"

# The test configuration the expectations assume (source ``hapi-test``).
PROGRAM_NPI = ("http://hl7.org/fhir/sid/us-npi", "1999999984")
CONFIGURED_REFERENCES = frozenset(
    {"Organization/riverside-iop", "HealthcareService/riverside-iop-bh", "PractitionerRole/riverside-iop-intake"}
)
# Put into the EHR by the harness before any case (Organization/riverside-iop, carrying the program's NPI).
SEEDED = frozenset({"Organization/riverside-iop"})

Route = Literal["push-servicerequest", "push-bundle", "task", "poll", "subscription"]
Outcome = Literal["accept", "accept-with-warning", "reject"]
ROUTES: tuple[Route, ...] = ("push-servicerequest", "push-bundle", "task", "poll", "subscription")
OUTCOMES: tuple[Outcome, ...] = ("accept", "accept-with-warning", "reject")
# Where a case is submitted; poll and subscription cases are PUT into the EHR (after ehr_holds) instead.
ROUTE_PATHS: dict[Route, str] = {
    "push-servicerequest": "/fhir/ServiceRequest",
    "push-bundle": "/fhir",
    "task": "/fhir/Task",
}

# What a case can say it shows (case.json "tags"); README.md explains each.
TAGS = frozenset(
    {f"route:{route}" for route in ROUTES}
    | {
        f"performer:{style}"
        for style in (
            "none",
            "identifier",
            "literal-held-program",
            "literal-held-other",
            "literal-held-unidentified",
            "literal-configured",
            "literal-unresolvable",
            "contained",
            "bundle-entry-urn",
            "bundle-entry-absolute",
            "practitionerrole",
            "healthcareservice",
        )
    }
    | {f"identifier:{style}" for style in ("system", "no-system", "none")}
    | {
        f"subject:{style}"
        for style in (
            "relative-held",
            "relative-not-held",
            "numeric-id",
            "urn-one-match",
            "urn-no-match",
            "urn-several-matches",
            "contained-one-match",
            "contained-no-match",
            "contained-several-matches",
            "identifier-one-match",
            "untyped-identifier",
            "foreign-base-carried",
            "foreign-base-not-carried",
        )
    }
    | {
        f"code:{kind}"
        for kind in ("referral", "hcpcs", "unrecognised", "none", "loinc", "lab-category", "imaging-category", "dnr")
    }
    | {f"several-srs:{kind}" for kind in ("one-to-program", "two-to-program", "none-to-program", "two-conflicting")}
    | {f"bundle:{kind}" for kind in ("transaction", "collection", "message", "document", "nested")}
    | {f"fullurl:{kind}" for kind in ("urn-uuid", "absolute-foreign", "absolute-source-base")}
    | {"status:not-active", "intent:not-order", "structure:invalid"}
    | {"contained", "extensions", "meta:profile", "narrative"}
)


@dataclass(frozen=True)
class Source:
    ig: str
    version: str
    repository: str
    commit: str
    url: str
    form: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Expectation:
    """``expressions``: every one is named by an issue (errors for a reject, warnings for accept-with-warning).
    ``any_of``: at least one is named (published examples with several faults). ``may_also``: named or not.
    ``status`` is None for poll, which has no answer: there the outcome is whether the referral is taken."""

    outcome: Outcome
    status: int | None
    expressions: tuple[str, ...]
    any_of: tuple[str, ...]
    may_also: tuple[str, ...]
    patient_linked: bool
    patient: str | None  # the EHR patient every write-back must reference, when patient_linked
    not_patient: tuple[str, ...]  # EHR patients no write-back may reference
    taken: tuple[str, ...]  # fullUrls of the ServiceRequests taken from a Bundle with several


@dataclass(frozen=True)
class RealWorldCase:
    name: str
    title: str
    shows: str
    source: Source
    adapted: tuple[str, ...]  # every change from the published example, and why; empty when sent as published
    route: Route
    submission: dict[str, Any]
    ehr_holds: tuple[dict[str, Any], ...]  # PUT into the EHR at their ids, in this order, before the submission
    expect: Expectation
    tags: frozenset[str]

    @property
    def taken_in(self) -> bool:
        return self.expect.outcome != "reject"

    @property
    def path(self) -> str | None:
        """The service's path the submission is posted to (None: it is put into the EHR, to be found there)."""
        return ROUTE_PATHS.get(self.route)


def load_cases(source_base: str = SOURCE_BASE) -> list[RealWorldCase]:
    """Every case, sorted by name, with ``{{SOURCE_BASE}}`` replaced by ``source_base``."""
    base = source_base.rstrip("/")
    return [_load(folder, base) for folder in sorted(CORPUS.iterdir()) if (folder / "case.json").is_file()]


def _read(path: Path, base: str) -> Any:
    return json.loads(path.read_text().replace(SOURCE_BASE, json.dumps(base)[1:-1]))


def _load(folder: Path, base: str) -> RealWorldCase:
    meta = _read(folder / "case.json", base)
    src, expect = meta["source"], meta["expect"]
    return RealWorldCase(
        name=folder.name,
        title=meta["title"],
        shows=meta["shows"],
        source=Source(
            ig=src["ig"],
            version=src["version"],
            repository=src["repository"],
            commit=src["commit"],
            url=src["url"],
            form=src["form"],
            paths=tuple(src["paths"]),
        ),
        adapted=tuple(meta["adapted"]),
        route=cast(Route, meta["route"]),
        submission=_read(folder / "submission.json", base),
        ehr_holds=tuple(meta["ehr_holds"]),
        expect=Expectation(
            outcome=cast(Outcome, expect["outcome"]),
            status=expect["status"],
            expressions=tuple(expect["expressions"]),
            any_of=tuple(expect.get("any_of", ())),
            may_also=tuple(expect.get("may_also", ())),
            patient_linked=expect["patient_linked"],
            patient=expect.get("patient"),
            not_patient=tuple(expect.get("not_patient", ())),
            taken=tuple(expect.get("taken", ())),
        ),
        tags=frozenset(meta["tags"]),
    )
