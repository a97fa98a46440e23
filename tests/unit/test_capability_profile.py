"""Reading what a referring EHR lets us write from its CapabilityStatement (pure)."""

from __future__ import annotations

from fhir_mappings.capability import offered, updatable_types

# Shaped like Epic's public R4 statement: CarePlan and Encounter read/search only, Task updatable,
# DocumentReference create only (so not updatable, since every write is a conditional update).
EPIC_LIKE = {
    "resourceType": "CapabilityStatement",
    "rest": [
        {
            "mode": "server",
            "resource": [
                {"type": "CarePlan", "interaction": [{"code": "read"}, {"code": "search-type"}]},
                {"type": "Encounter", "interaction": [{"code": "read"}, {"code": "search-type"}]},
                {"type": "Task", "interaction": [{"code": "read"}, {"code": "update"}]},
                {"type": "DocumentReference", "interaction": [{"code": "create"}]},
            ],
        },
        {"mode": "client", "resource": [{"type": "CarePlan", "interaction": [{"code": "update"}]}]},
    ],
}


def test_only_types_the_server_lets_us_update_are_writable() -> None:
    assert updatable_types(EPIC_LIKE) == frozenset({"Task"})


def test_a_statement_without_rest_allows_nothing() -> None:
    assert updatable_types({"resourceType": "CapabilityStatement"}) == frozenset()


def test_what_a_statement_offers_is_worked_out_once() -> None:
    offered_by_epic = offered(EPIC_LIKE)
    assert offered_by_epic.updates("Task")
    assert not offered_by_epic.updates("CarePlan")
    assert not offered_by_epic.transactions


def test_no_statement_at_all_counts_every_type_as_updatable() -> None:
    """An EHR that will not say still gets the resources; one that refuses a write gets its note."""
    nothing_said = offered({})
    assert nothing_said.updates("CarePlan")
    assert nothing_said.updates("Encounter")
    assert not nothing_said.transactions
