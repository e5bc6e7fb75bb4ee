"""Bearer tokens on every transport of a real server: HTTP, WebSocket ``connection_init`` (by
gql), multipart streams and MCP (by the SDK's client), with keys made in the test and published
by a local JWKS server. The caller a token names is the actor of what it does."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import httpx2
import pytest
from gql import gql
from gql.transport.exceptions import TransportQueryError
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.issuer import AUDIENCE, ISSUER, Issuer, jwks_server
from tests.servers import Servers, servers
from tests.subscribers import MULTIPART_ACCEPT, subscribed, ws_client

APPLY = """mutation { applyForLoan(input: {applicant: {fullName: "Ama Owusu",
  email: "ama.token@example.com"}, productCode: "PERSONAL-USD", amount: "5000",
  termMonths: 12}) { application { id } userErrors { code } } }"""
TRAIL = """query($id: ID!) { auditTrail(entityId: $id) { edges { node { action actor } } } }"""


@pytest.fixture(scope="module")
async def issued(server_url) -> AsyncIterator[tuple[Servers, Issuer]]:
    issuer = Issuer()
    issuer.add("key-1", "ES256")
    with jwks_server(issuer) as (url, _):
        env = {"JWT_JWKS": url, "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE}
        async with servers(server_url, "lending_tokens", count=1, env=env) as running:
            yield running, issuer


def _http(running: Servers, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{running.ports[0]}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


async def test_a_token_acts_over_http_and_is_the_actor_it_names(issued):
    running, issuer = issued
    agent = issuer.token("key-1", role="AGENT", sub="agent-7")
    async with _http(running, agent) as http:
        applied = (await http.post("/graphql", json={"query": APPLY})).json()
    payload = applied["data"]["applyForLoan"]
    assert payload["userErrors"] == []
    admin = issuer.token("key-1", role="ADMIN", sub="ops")
    async with _http(running, admin) as http:
        variables = {"id": payload["application"]["id"]}
        trail = (await http.post("/graphql", json={"query": TRAIL, "variables": variables})).json()
    [entry] = [e["node"] for e in trail["data"]["auditTrail"]["edges"]]
    assert entry == {"action": "application.submitted", "actor": f"{ISSUER}#agent-7"}


async def test_a_refused_token_is_a_401_that_says_why_on_every_http_transport(issued):
    running, issuer = issued
    expired = issuer.token("key-1", exp=int(time.time()) - 3600)
    async with _http(running, expired) as http:
        posted = await http.post("/graphql", json={"query": "{ loanProducts { code } }"})
        streamed = await http.post(
            "/graphql",
            json={"query": "subscription { loanEvents { type } }"},
            headers={"accept": MULTIPART_ACCEPT},
        )
        tools = await http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"accept": "application/json"},
        )
    for response in (posted, streamed, tools):
        assert response.status_code == 401, response.text
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert error["message"] == "The bearer token is refused: it has expired."
    assert posted.headers["www-authenticate"] == "Bearer"


async def test_a_token_in_connection_init_acts_over_a_websocket(issued):
    running, issuer = issued
    async with ws_client(running.ports[0], issuer.token("key-1", role="SERVICER")) as session:
        found = await session.execute(gql("{ loanProducts { code } }"))
    assert found == {"loanProducts": [{"code": "PERSONAL-USD"}]}
    expired = issuer.token("key-1", exp=int(time.time()) - 3600)
    async with ws_client(running.ports[0], expired) as session:
        with pytest.raises(Exception, match="it has expired"):
            await session.execute(gql("{ loanProducts { code } }"))


async def test_a_token_lists_its_roles_tools_over_mcp(issued):
    running, issuer = issued
    headers = {"Authorization": f"Bearer {issuer.token('key-1', role='SERVICER')}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        transport = streamable_http_client(
            f"http://127.0.0.1:{running.ports[0]}/mcp", http_client=http
        )
        async with Client(transport) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
    assert "record_payment" in names
    assert "apply_for_loan" not in names


async def test_an_issuer_whose_keys_cannot_be_read_is_retryable_over_a_websocket(server_url):
    # given a server whose token issuer publishes its keys where nothing answers
    with jwks_server(Issuer()) as (url, _):
        pass  # nothing listens there any more
    env = {"JWT_JWKS": url, "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE}
    issuer = Issuer()
    issuer.add("k", "ES256")
    async with servers(server_url, "lending_tokens_unread", count=1, env=env) as running:
        client = ws_client(running.ports[0], issuer.token("k"))
        # when a token's holder subscribes, and asks a query, over a WebSocket
        async with subscribed(client, "subscription { loanEvents { type } }") as subscriber:
            result = await subscriber.next()
        async with ws_client(running.ports[0], issuer.token("k")) as session:
            with pytest.raises(TransportQueryError) as query:
                await session.execute(gql("{ loanProducts { code } }"))
    # then each is told to try again later (SERVICE_UNAVAILABLE, retryable), as over HTTP (503),
    # not that its token was refused: it was never checked
    for errors in (result.errors, query.value.errors):
        [error] = errors
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE", error
        assert error["extensions"]["retryable"] is True
        assert "signing keys cannot be read" in error["message"]
