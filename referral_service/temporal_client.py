"""Connecting to Temporal with the project's data converter, and the search-attribute check."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client

from referral_service.codec import data_converter
from referral_service.config import Settings
from workflows import search_attributes


async def connect(settings: Settings) -> Client:
    """A client whose payloads are encrypted with the configured (or dev) key ring."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.key_ring()),
    )


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
