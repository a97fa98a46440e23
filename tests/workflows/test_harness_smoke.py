"""The harness starts real Temporal servers with our search attributes and encrypted payloads."""

from temporalio.testing import WorkflowEnvironment

from referral_service.temporal_client.search_attribute_setup import missing_search_attributes


async def test_dev_server_has_every_referral_search_attribute(temporal_env: WorkflowEnvironment) -> None:
    """A workflow upserting an unregistered attribute would retry forever, so all must be there."""
    assert await missing_search_attributes(temporal_env.client) == []
