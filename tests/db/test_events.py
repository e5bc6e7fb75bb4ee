"""Loan events reach subscribers on every server process and every transport, read by real
clients: Python's gql over a WebSocket (both subprotocols), and HTTP multipart streams."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError

from graph.agents.catalogue import catalogue
from graph.schema import schema
from tests.servers import Servers, servers
from tests.subscribers import (
    LEGACY_WS,
    multipart,
    subscribed,
    ws_client,
)


@pytest.fixture(scope="module")
async def two_servers(server_url) -> AsyncIterator[Servers]:
    """Two server processes on one fresh database, and an ADMIN key (shared by the module's
    tests: each applies with emails of its own)."""
    async with servers(server_url, "lending_events_test") as found:
        yield found


SUBSCRIBE = """subscription { loanEvents { type applicationId loanId entityId actor
  application { status decisions { outcome } } loan { status } entity { __typename } } }"""
FOLLOW = """subscription($id: ID) { loanEvents(applicationId: $id) {
  type applicationId application { status } } }"""
APPLY = """mutation($email: String!) { applyForLoan(input: {applicant: {fullName: "Ama Owusu",
  email: $email}, productCode: "PERSONAL-USD", amount: "5000", termMonths: 12}) {
  application { id } userErrors { code } } }"""
DECIDE = """mutation($id: ID!, $outcome: String!) { decideApplication(input: {applicationId: $id,
  outcome: $outcome, reason: "checked"}) { userErrors { code } } }"""
WITHDRAW = """mutation($id: ID!) { withdrawApplication(input: {applicationId: $id}) {
  userErrors { code } } }"""


def http(port: int, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30)


async def apply(client: httpx.AsyncClient, email: str) -> str:
    body = await client.post("/graphql", json={"query": APPLY, "variables": {"email": email}})
    found = body.json()["data"]["applyForLoan"]
    assert found["userErrors"] == [], found
    return str(found["application"]["id"])


async def decide(client: httpx.AsyncClient, app_id: str, outcome: str) -> list[Any]:
    variables = {"id": app_id, "outcome": outcome}
    body = (await client.post("/graphql", json={"query": DECIDE, "variables": variables})).json()
    return list(body["data"]["decideApplication"]["userErrors"])


async def test_events_with_their_objects_reach_a_gql_subscriber_on_another_process(two_servers):
    (port_a, port_b), key = two_servers.ports, two_servers.key
    # given a gql subscriber on server A (graphql-transport-ws, the key in connection_init)
    async with subscribed(ws_client(port_a, key), SUBSCRIBE) as events, http(port_b, key) as b:
        # when server B takes an application, refuses a bad decision and records a real one
        app_id = await apply(b, "ama@example.com")
        assert await decide(b, app_id, "MAYBE")
        assert await decide(b, app_id, "APPROVED") == []

        # then A's subscriber hears the submission, then exactly the committed decision, each
        # with the objects it concerns as they were when it was delivered
        submitted = (await events.next()).data["loanEvents"]
        assert submitted["type"] == "SUBMITTED"
        assert submitted["applicationId"] == app_id
        assert submitted["application"] == {"status": "SUBMITTED", "decisions": []}
        assert submitted["loan"] is None
        assert submitted["entity"] == {"__typename": "LoanApplication"}
        decided = await events.next()
        assert decided.errors is None
        event = decided.data["loanEvents"]
        assert event["type"] == "DECIDED"
        assert event["applicationId"] == app_id
        assert event["loanId"] is not None
        assert event["actor"] == "ops"
        assert event["application"] == {
            "status": "APPROVED",
            "decisions": [{"outcome": "APPROVED"}],
        }
        assert event["loan"] == {"status": "APPROVED"}
        assert event["entity"] == {"__typename": "LoanApplication"}  # what entityId names
        assert await events.nothing_within(0.5)


async def test_the_older_graphql_ws_subprotocol_works_too(two_servers):
    (port_a, port_b), key = two_servers.ports, two_servers.key
    async with (
        subscribed(ws_client(port_a, key, LEGACY_WS), FOLLOW) as events,
        http(port_b, key) as b,
    ):
        app_id = await apply(b, "legacy@example.com")
        heard = (await events.next()).data["loanEvents"]
        assert heard == {
            "type": "SUBMITTED",
            "applicationId": app_id,
            "application": {"status": "SUBMITTED"},
        }


async def test_a_subscriber_needs_a_key(two_servers):
    port_a = two_servers.ports[0]
    async with subscribed(ws_client(port_a, None), SUBSCRIBE, settle=0) as events:
        with pytest.raises(TransportQueryError) as refused:
            await events.next()
    assert refused.value.errors is not None
    assert refused.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_filtered_subscriber_hears_its_application_only(two_servers):
    (port_a, port_b), key = two_servers.ports, two_servers.key
    async with http(port_b, key) as b:
        followed = await apply(b, "followed@example.com")
        async with subscribed(ws_client(port_a, key), FOLLOW, {"id": followed}) as events:
            other = await apply(b, "other@example.com")
            await decide(b, other, "REJECTED")
            await decide(b, followed, "REJECTED")
            heard = (await events.next()).data["loanEvents"]
            assert heard == {
                "type": "DECIDED",
                "applicationId": followed,
                "application": {"status": "REJECTED"},
            }
            assert await events.nothing_within(0.5)


async def test_a_submission_reaches_unfiltered_subscribers_once_and_a_refusal_never(two_servers):
    (port_a, port_b), key = two_servers.ports, two_servers.key
    async with subscribed(ws_client(port_a, key), SUBSCRIBE) as events, http(port_b, key) as b:
        # given an application submitted through server B with an idempotency key
        application = {
            "applicant": {"fullName": "Kofi Asante", "email": "kofi@example.com"},
            "productCode": "PERSONAL-USD",
            "amount": "5000",
            "termMonths": 12,
            "idempotencyKey": "kofi-1",
        }
        query = """mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) {
          application { id } userErrors { code } replayed } }"""
        first = await b.post("/graphql", json={"query": query, "variables": {"input": application}})
        app_id = first.json()["data"]["applyForLoan"]["application"]["id"]
        # when it is retried (a replay), and a second one is refused (an open one exists)
        replay = await b.post(
            "/graphql", json={"query": query, "variables": {"input": application}}
        )
        assert replay.json()["data"]["applyForLoan"]["replayed"] is True
        again = application | {"idempotencyKey": "kofi-2"}
        refused = await b.post("/graphql", json={"query": query, "variables": {"input": again}})
        assert refused.json()["data"]["applyForLoan"]["userErrors"] == [
            {"code": "DUPLICATE_OPEN_APPLICATION"}
        ]
        # and something else happens afterwards, so that the stream has a known end
        withdrawn = await b.post("/graphql", json={"query": WITHDRAW, "variables": {"id": app_id}})
        assert withdrawn.json()["data"]["withdrawApplication"]["userErrors"] == []

        # then server A's subscriber heard one SUBMITTED, then the withdrawal
        heard = [(await events.next()).data["loanEvents"] for _ in range(2)]
        assert [(e["type"], e["applicationId"], e["loanId"]) for e in heard] == [
            ("SUBMITTED", app_id, None),
            ("WITHDRAWN", app_id, None),
        ]
        assert heard[1]["application"]["status"] == "WITHDRAWN"


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_events_stream_over_http_as_multipart_parts(two_servers, method):
    (port_a, port_b), key = two_servers.ports, two_servers.key
    async with http(port_a, key) as a, http(port_b, key) as b:
        async with multipart(a, SUBSCRIBE, method=method) as stream:
            assert stream.response.status_code == 200
            assert stream.response.headers["content-type"].startswith("multipart/mixed")
            app_id = await apply(b, f"stream-{method.lower()}@example.com")
            part = await stream.next()
        assert part is not None
        event = part["payload"]["data"]["loanEvents"]
        assert (event["type"], event["applicationId"]) == ("SUBMITTED", app_id)
        assert event["application"] == {"status": "SUBMITTED", "decisions": []}


async def test_the_catalogues_subscription_streams_by_its_hash(two_servers):
    (port_a, port_b), key = two_servers.ports, two_servers.key
    watch = catalogue(schema._schema).by_name["loan_events"]
    async with (
        http(port_a, key) as a,
        http(port_b, key) as b,
        multipart(a, None, body=watch.request({})) as stream,
    ):
        assert stream.response.status_code == 200
        app_id = await apply(b, "by-hash@example.com")
        part = await stream.next()
    assert part is not None
    event = part["payload"]["data"]["loanEvents"]
    assert (event["type"], event["applicationId"]) == ("SUBMITTED", app_id)
    assert event["application"]["status"] == "SUBMITTED"


async def test_a_multipart_stream_is_held_to_the_same_key_and_filter(two_servers):
    (port_a, port_b), key = two_servers.ports, two_servers.key
    async with http(port_a, None) as anonymous, multipart(anonymous, SUBSCRIBE, settle=0) as no:
        assert no.response.status_code == 401
    async with http(port_a, key) as a, http(port_b, key) as b:
        followed = await apply(b, "mp-followed@example.com")
        async with multipart(a, FOLLOW, {"id": followed}) as stream:
            await apply(b, "mp-other@example.com")
            await decide(b, followed, "REJECTED")
            part = await stream.next()
        assert part is not None
        assert part["payload"]["data"]["loanEvents"]["type"] == "DECIDED"
        assert part["payload"]["data"]["loanEvents"]["applicationId"] == followed


async def test_a_client_that_goes_away_frees_its_subscription(two_servers):
    (port_a, _), key = two_servers.ports, two_servers.key
    async with http(port_a, key) as a:
        async with multipart(a, SUBSCRIBE):
            assert await _open_subscriptions(a) == 1
        for _ in range(50):
            if await _open_subscriptions(a) == 0:
                break
            await asyncio.sleep(0.1)
        assert await _open_subscriptions(a) == 0


async def _open_subscriptions(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    lines = [line for line in text.splitlines() if line.startswith("lending_subscriptions ")]
    return float(lines[0].split()[1]) if lines else 0.0


async def test_streams_end_cleanly_when_the_server_shuts_down(server_url, tmp_path):
    # given a server with a WebSocket subscriber and an HTTP stream
    async with servers(server_url, "lending_events_shutdown", count=1) as found:
        port, key = found.ports[0], found.key
        process = found.processes[0]
        async with (
            http(port, key) as client,
            multipart(client, SUBSCRIBE) as stream,
            subscribed(ws_client(port, key), SUBSCRIBE) as events,
        ):
            # when it is told to stop
            began = time.monotonic()
            os.kill(process.pid, signal.SIGTERM)
            # then the HTTP stream ends with one retryable SERVICE_UNAVAILABLE error and
            # its closing boundary, and the WebSocket is closed with 1012 (restarting)
            last = await stream.next()
            assert last is not None
            error = last["payload"]["errors"][0]
            assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert error["extensions"]["retryable"] is True
            assert await stream.next() is None
            with pytest.raises(TransportConnectionFailed) as closed:
                await events.next()
            assert closed.value.__cause__.rcvd.code == 1012
            await asyncio.to_thread(process.wait, 10)
            # long before the shutdown timeout (10 s) would have cut the stream off
            assert time.monotonic() - began < 5
