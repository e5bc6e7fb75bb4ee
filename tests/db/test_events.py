"""Loan events reach a subscriber on one server process when another process commits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from tests.servers import Servers, servers


@pytest.fixture
async def two_servers(server_url) -> AsyncIterator[Servers]:
    """Two server processes on one fresh database, and an ADMIN key."""
    async with servers(server_url, "lending_events_test") as found:
        yield found


SUBSCRIBE = "subscription { loanEvents { type applicationId loanId entityId actor } }"
APPLY = """mutation { applyForLoan(input: {applicant: {fullName: "Ama Owusu",
  email: "ama@example.com"}, productCode: "PERSONAL-USD", amount: "5000", termMonths: 12}) {
  application { id } userErrors { code } } }"""
DECIDE = """mutation($id: ID!, $outcome: String!) { decideApplication(input: {applicationId: $id,
  outcome: $outcome, reason: "checked"}) { userErrors { code } } }"""


async def next_message(ws) -> dict:
    async with asyncio.timeout(10):
        return json.loads(await ws.recv())


async def test_an_event_committed_on_one_process_reaches_a_subscriber_on_another(two_servers):
    (port_a, port_b), key = two_servers.ports, two_servers.key
    url = f"ws://127.0.0.1:{port_a}/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        # given a subscriber on server A, authenticated in connection_init
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
        )
        assert (await next_message(ws))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
        await asyncio.sleep(0.5)  # let server A start listening

        # when server B records a refused decision and then a real one
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port_b}", headers=headers
        ) as client:
            applied = (await client.post("/graphql", json={"query": APPLY})).json()
            app_id = applied["data"]["applyForLoan"]["application"]["id"]
            refused = await client.post(
                "/graphql", json={"query": DECIDE, "variables": {"id": app_id, "outcome": "MAYBE"}}
            )
            assert refused.json()["data"]["decideApplication"]["userErrors"]
            decided = await client.post(
                "/graphql",
                json={"query": DECIDE, "variables": {"id": app_id, "outcome": "APPROVED"}},
            )
            assert decided.json()["data"]["decideApplication"]["userErrors"] == []

        # then A's subscriber hears the submission, then exactly the committed decision
        submitted = await next_message(ws)
        assert submitted["payload"]["data"]["loanEvents"]["type"] == "SUBMITTED"
        message = await next_message(ws)
        assert message["type"] == "next", message
        event = message["payload"]["data"]["loanEvents"]
        assert event["type"] == "DECIDED"
        assert event["applicationId"] == app_id
        assert event["loanId"] is not None
        assert event["actor"] == "ops"


async def test_a_subscriber_needs_a_key(two_servers):
    port_a = two_servers.ports[0]
    url = f"ws://127.0.0.1:{port_a}/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await next_message(ws))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
        message = await next_message(ws)
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"


APPLY_WITH_KEY = """mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) {
  application { id } userErrors { code } replayed } }"""


async def _subscribed(port: int, key: str):
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"]
    )
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
    await ws.send(json.dumps(init))
    assert (await next_message(ws))["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
    await asyncio.sleep(0.5)  # let the server start listening
    return ws


async def test_a_submission_reaches_unfiltered_subscribers_once_and_a_refusal_never(two_servers):
    (port_a, port_b), key = two_servers.ports, two_servers.key
    ws = await _subscribed(port_a, key)
    try:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port_b}", headers=headers
        ) as client:
            # given an application submitted through server B with an idempotency key
            application = {
                "applicant": {"fullName": "Kofi Asante", "email": "kofi@example.com"},
                "productCode": "PERSONAL-USD",
                "amount": "5000",
                "termMonths": 12,
                "idempotencyKey": "kofi-1",
            }
            first = await client.post(
                "/graphql", json={"query": APPLY_WITH_KEY, "variables": {"input": application}}
            )
            app_id = first.json()["data"]["applyForLoan"]["application"]["id"]
            # when it is retried (a replay), and a second one is refused (an open one exists)
            replay = await client.post(
                "/graphql", json={"query": APPLY_WITH_KEY, "variables": {"input": application}}
            )
            assert replay.json()["data"]["applyForLoan"]["replayed"] is True
            refused = await client.post(
                "/graphql",
                json={
                    "query": APPLY_WITH_KEY,
                    "variables": {"input": application | {"idempotencyKey": "kofi-2"}},
                },
            )
            assert refused.json()["data"]["applyForLoan"]["userErrors"] == [
                {"code": "DUPLICATE_OPEN_APPLICATION"}
            ]
            # and something else happens afterwards, so that the stream has a known end
            withdrawn = await client.post(
                "/graphql",
                json={
                    "query": """mutation($id: ID!) { withdrawApplication(input:
                      {applicationId: $id}) { userErrors { code } } }""",
                    "variables": {"id": app_id},
                },
            )
            assert withdrawn.json()["data"]["withdrawApplication"]["userErrors"] == []

        # then server A's unfiltered subscriber heard one SUBMITTED, then the withdrawal
        heard = [(await next_message(ws))["payload"]["data"]["loanEvents"] for _ in range(2)]
        assert [(e["type"], e["applicationId"], e["loanId"]) for e in heard] == [
            ("SUBMITTED", app_id, None),
            ("WITHDRAWN", app_id, None),
        ]
    finally:
        await ws.close()
