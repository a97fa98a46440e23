"""Custom search attributes of a referral workflow. None of them may carry PHI.

Every attribute must be registered on the server before a workflow upserts it (an unregistered one makes
the workflow task retry forever), so the dev stack, the tests and the worker's start-up check all read
this one list.
"""

from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from referral_service.domain.lifecycle import Phase

PHASE = SearchAttributeKey.for_keyword("ReferralPhase")
TRACK = SearchAttributeKey.for_keyword("ReferralTrack")
SOURCE = SearchAttributeKey.for_keyword("ReferralSource")
AT_RISK = SearchAttributeKey.for_bool("ReferralAtRisk")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("ReferralNextDeadline")
# Keyed hashes of the patient's identifiers and name plus birth date (domain/patient_match.py), set at
# start: intake finds open referrals of the same patient without the attribute holding PHI.
PATIENT_MATCH = SearchAttributeKey.for_keyword_list("ReferralPatientMatch")

# How many of the referral's writes the EHR refused for good and nobody has yet sent again; set from the first
# refusal on (unset: none ever), so the list can flag them (``refused_writes=true``).
REFUSED_WRITES = SearchAttributeKey.for_int("ReferralRefusedWrites")

ALL: tuple[SearchAttributeKey, ...] = (  # type: ignore[type-arg]
    PHASE,
    TRACK,
    SOURCE,
    AT_RISK,
    NEXT_DEADLINE,
    PATIENT_MATCH,
    REFUSED_WRITES,
)


def at_start(source_id: str, patient_match: list[str]) -> TypedSearchAttributes:
    """What a referral's workflow is started with: received, not at risk, and its patient-match keys."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(PHASE, str(Phase.RECEIVED)),
        SearchAttributePair(SOURCE, source_id),
        SearchAttributePair(AT_RISK, False),
    ]
    if patient_match:
        pairs.append(SearchAttributePair(PATIENT_MATCH, patient_match))
    return TypedSearchAttributes(pairs)
