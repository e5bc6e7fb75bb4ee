"""Subscribers as clients write them: Python's gql over a WebSocket, and an HTTP multipart stream.

``subscribed`` runs a subscription with gql (graphql-transport-ws, or the older graphql-ws) in
the background and hands its results (graphql-core ExecutionResults) out one by one.
``multipart`` reads the parts of Apollo's multipart subscription protocol from an HTTP stream
(Apollo Client's own HttpLink reads it in `make e2e`; no Python client speaks it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

TRANSPORT_WS = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL  # graphql-transport-ws
LEGACY_WS = WebsocketsTransport.APOLLO_SUBPROTOCOL  # graphql-ws (subscriptions-transport-ws)
MULTIPART_ACCEPT = 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json'
WAIT = 10.0  # seconds an expected event may take


@dataclass
class Subscriber:
    """A running subscription's results (gql ExecutionResults), in order."""

    results: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None

    async def next(self, within: float = WAIT) -> Any:
        """The next result; an exception the client raised is raised here."""
        async with asyncio.timeout(within):
            found = await self.results.get()
        if isinstance(found, BaseException):
            raise found
        return found

    async def nothing_within(self, seconds: float) -> bool:
        """Whether no result arrives within ``seconds``."""
        try:
            await self.next(seconds)
        except TimeoutError:
            return True
        return False


def ws_client(port: int, key: str | None, protocol: str = TRANSPORT_WS) -> Client:
    """A gql client of the server on ``port``, sending ``key`` in ``connection_init``."""
    payload = {"Authorization": f"Bearer {key}"} if key else {}
    transport = WebsocketsTransport(
        url=f"ws://127.0.0.1:{port}/graphql", init_payload=payload, subprotocols=[protocol]
    )
    return Client(transport=transport)


@contextlib.asynccontextmanager
async def subscribed(
    client: Client, query: str, variables: dict[str, Any] | None = None, settle: float = 0.5
) -> AsyncIterator[Subscriber]:
    """Subscribe with ``client`` (connected here) and collect the results in the background.

    ``settle`` seconds are waited for the server to start listening before the block runs.
    """
    subscriber = Subscriber()
    request = GraphQLRequest(query, variable_values=variables)

    async def run() -> None:
        try:
            async with client as session:
                # The transport's own stream: every result, errors too (the session's would end
                # the subscription at the first result carrying an error).
                async for result in session.transport.subscribe(request):
                    subscriber.results.put_nowait(result)
        except Exception as error:
            subscriber.results.put_nowait(error)

    subscriber.task = asyncio.create_task(run())
    await asyncio.sleep(settle)
    try:
        yield subscriber
    finally:
        subscriber.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await subscriber.task


@dataclass
class Multipart:
    """The parts of one multipart subscription stream, as they arrive."""

    response: httpx.Response
    buffer: bytes = b""
    ended: bool = False
    chunks: AsyncIterator[bytes] | None = None

    async def next(self, within: float = WAIT) -> dict[str, Any] | None:
        """The next part that is not a heartbeat; None once the stream has ended."""
        async with asyncio.timeout(within):
            while True:
                part = await self._part()
                if part is None or part:
                    return part

    async def _part(self) -> dict[str, Any] | None:
        if self.chunks is None:
            self.chunks = self.response.aiter_raw()
        while True:
            start = self.buffer.find(b"\r\n\r\n")
            end = self.buffer.find(b"\r\n--graphql", start + 4) if start >= 0 else -1
            if end >= 0:
                body, self.buffer = self.buffer[start + 4 : end], self.buffer[end + 11 :]
                if body:
                    parsed: dict[str, Any] = orjson.loads(body)
                    return parsed
                continue
            if self.ended or self.buffer.lstrip(b"\r\n").startswith(b"--graphql--"):
                self.ended = True
                return None
            try:
                self.buffer += await anext(self.chunks)
            except StopAsyncIteration:
                self.ended = True
                return None


@contextlib.asynccontextmanager
async def multipart(
    client: httpx.AsyncClient,
    query: str | None,
    variables: dict[str, Any] | None = None,
    method: str = "POST",
    settle: float = 0.5,
    body: dict[str, Any] | None = None,
) -> AsyncIterator[Multipart]:
    """A subscription over HTTP, read part by part (``settle``: as for ``subscribed``);
    ``body`` instead of a query: a request of another shape (a persisted operation's)."""
    headers = {"Accept": MULTIPART_ACCEPT}
    body = body or {"query": query, "variables": variables or {}}
    if method == "GET":
        params = {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in body.items()}
        request = client.build_request("GET", "/graphql", params=params, headers=headers)
    else:
        request = client.build_request("POST", "/graphql", json=body, headers=headers)
    response = await client.send(request, stream=True)
    try:
        await asyncio.sleep(settle)
        yield Multipart(response)
    finally:
        await response.aclose()
