"""The namespace's referral search attributes: which are missing, and registering them."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client

from workflows import search_attributes


async def missing_search_attributes(client: Client) -> list[str]:
    """Names of the referral search attributes the namespace does not have yet."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return [key.name for key in search_attributes.ALL if key.name not in listed.custom_attributes]


async def register_search_attributes(client: Client) -> None:
    """Register every referral search attribute (for servers started without them, like the test server)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in search_attributes.ALL
            },
        )
    )
