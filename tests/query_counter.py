"""A Temporal client that counts the workflow queries it sends: the measures must send none."""

from __future__ import annotations

from typing import Any

from temporalio import client as temporal


class QueryCounter(temporal.Interceptor):
    """Counts ``query_workflow`` calls made through a client built with it (``counting_client``)."""

    def __init__(self) -> None:
        self.queries = 0

    def intercept_client(self, next: temporal.OutboundInterceptor) -> temporal.OutboundInterceptor:
        return _Counting(next, self)


class _Counting(temporal.OutboundInterceptor):
    def __init__(self, next: temporal.OutboundInterceptor, counter: QueryCounter) -> None:
        super().__init__(next)
        self._counter = counter

    async def query_workflow(self, input: temporal.QueryWorkflowInput) -> Any:
        self._counter.queries += 1
        return await super().query_workflow(input)


def counting_client(client: temporal.Client) -> tuple[temporal.Client, QueryCounter]:
    """``client``'s connection, namespace and codec, counting its workflow queries."""
    counter = QueryCounter()
    config = client.config()
    config["interceptors"] = [*config["interceptors"], counter]
    return temporal.Client(**config), counter
