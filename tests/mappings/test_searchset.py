"""A poll's searchset Bundle, split into one referral Bundle per ServiceRequest that the mapping reads."""

from __future__ import annotations

from typing import Any

from fhir_mappings.referral_in import referral_from_fhir
from fhir_mappings.searchset import last_updated, referral_bundles
from tests.referrals import referral_bundle

BASE = "http://ehr.example.org/fhir"


def _as_searchset(*bundles: dict[str, Any]) -> dict[str, Any]:
    """What HAPI answers to ServiceRequest?_include=...: each resource once, with a server id."""
    entries: dict[str, dict[str, Any]] = {}
    for number, bundle in enumerate(bundles):
        ids = {}  # how the Bundle refers to each resource (fullUrl, or Type/id) -> its id on the server
        for i, entry in enumerate(bundle["entry"]):
            rtype = entry["resource"]["resourceType"]
            ids[entry["fullUrl"]] = ids[f"{rtype}/{entry['resource'].get('id')}"] = f"{rtype}/{number}-{i}"
        for entry in bundle["entry"]:
            resource = dict(entry["resource"])
            for key, value in list(resource.items()):
                if isinstance(value, dict) and value.get("reference") in ids:
                    resource[key] = {"reference": ids[value["reference"]]}
            rtype, rid = ids[entry["fullUrl"]].split("/")
            resource |= {"id": rid, "meta": {"lastUpdated": f"2026-11-2{number}T10:00:00+00:00"}}
            mode = "match" if rtype == "ServiceRequest" else "include"
            entries[f"{rtype}/{rid}"] = {
                "fullUrl": f"{BASE}/{rtype}/{rid}",
                "resource": resource,
                "search": {"mode": mode},
            }
    return {"resourceType": "Bundle", "type": "searchset", "entry": list(entries.values())}


def test_each_service_request_gets_its_own_patient_and_encounter_and_maps_like_a_pushed_one() -> None:
    ada, ben = referral_bundle("ada-testpatient-adult-inpatient"), referral_bundle("ben-testpatient-adolescent-php")

    bundles = referral_bundles(_as_searchset(ada, ben))

    assert len(bundles) == 2
    for bundle, original in zip(bundles, (ada, ben), strict=True):
        assert bundle["type"] == "collection"
        referral = referral_from_fhir(bundle, source_id="st-marys")
        pushed = referral_from_fhir(original, source_id="st-marys")
        assert referral.placer_identifier == pushed.placer_identifier
        assert referral.patient.identifiers == pushed.patient.identifiers
        assert referral.discharge == pushed.discharge.model_copy(update={"encounter": referral.discharge.encounter})


def test_the_watermark_is_the_matches_last_updated_not_the_included_resources() -> None:
    searchset = _as_searchset(referral_bundle("ada-testpatient-adult-inpatient"))
    assert last_updated(searchset) == ["2026-11-20T10:00:00+00:00"]
