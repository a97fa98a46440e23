"""What the intake asks the referring EHR: directory answers (a practitioner found by NPI, an organisation read)
are kept for ten minutes per source, so the hospital's EHR is not asked again for the same few names on every
referral; a patient is asked afresh each time. Real HAPI; the clock is the test's."""

from __future__ import annotations

import uuid
from collections import Counter

from fhir_mappings.ehr_lookups import Lookups
from referral_service.ehr.client import FhirClient, FhirExchange
from referral_service.ehr.source import SourceConfig
from referral_service.intake.ehr_answers import DIRECTORY_SECONDS, EhrAnswers
from tests.conftest import HAPI_SOURCE_ID

NPI = "http://hl7.org/fhir/sid/us-npi"
MRN = "urn:oid:2.16.840.1.113883.3.9999.1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_directory_answers_are_kept_for_ten_minutes_and_patients_are_asked_each_time(
    hapi_base_url: str, hapi_client: FhirClient
) -> None:
    run = uuid.uuid4().hex[:10]
    practitioner = await hapi_client.create(
        {"resourceType": "Practitioner", "identifier": [{"system": NPI, "value": f"9{run}"}]}
    )
    organization = await hapi_client.create({"resourceType": "Organization", "name": f"Hospital {run}"})
    patient = await hapi_client.create(
        {"resourceType": "Patient", "identifier": [{"system": MRN, "value": f"MRN-{run}"}]}
    )
    lookups = Lookups(
        reads=frozenset({f"Organization/{organization.id}"}),
        searches=frozenset({("Practitioner", f"{NPI}|9{run}"), ("Patient", f"{MRN}|MRN-{run}")}),
    )
    asked: Counter[str] = Counter()

    def seen(exchange: FhirExchange) -> None:
        asked[exchange.url.split("?")[0].split("/")[0]] += 1

    clock = Clock()
    answers = EhrAnswers(clock=clock)
    async with FhirClient(SourceConfig(id=HAPI_SOURCE_ID, base_url=hapi_base_url), observer=seen) as ehr:
        first = await answers.ask(ehr, lookups)
        assert asked == {"Practitioner": 1, "Organization": 1, "Patient": 1}

        clock.now += DIRECTORY_SECONDS - 1
        again = await answers.ask(ehr, lookups)
        assert asked == {"Practitioner": 1, "Organization": 1, "Patient": 2}  # only the patient asked again
        assert again == first  # the same answers, kept or asked

        clock.now += 2  # ten minutes since they were asked: the directory is asked again
        await answers.ask(ehr, lookups)
        assert asked == {"Practitioner": 2, "Organization": 2, "Patient": 3}

    assert first.matches[("Practitioner", f"{NPI}|9{run}")] == (practitioner.id,)
    assert first.matches[("Patient", f"{MRN}|MRN-{run}")] == (patient.id,)
    assert first.read(f"Organization/{organization.id}") is not None
