"""Checks shared by the FHIR intake tests: what a refused submission must (not) leave behind."""

from __future__ import annotations

import re
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def resource_of_type(bundle: dict[str, Any], resource_type: str) -> dict[str, Any]:
    [resource] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]
    return resource


def patient_phi(patient: dict[str, Any]) -> list[str]:
    """What identifies the patient: family and given name, MRN, birth date."""
    name = patient["name"][0]
    return [name["family"], *name["given"], patient["identifier"][0]["value"], patient["birthDate"]]


def echoed(phi: list[str], text: str) -> list[str]:
    """The values of ``phi`` that appear as whole words in ``text``."""
    return [value for value in phi if re.search(rf"\b{re.escape(value)}\b", text)]


def expressions(outcome: dict[str, Any]) -> list[str]:
    return [expression for issue in outcome["issue"] for expression in issue.get("expression") or []]


async def assert_not_started(client: Client, key: str, task_queue: str) -> None:
    """The Temporal server has no workflow for ``key``, nor any on the app's task queue."""
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(key).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    assert (await client.count_workflows(f"TaskQueue = '{task_queue}'")).count == 0
