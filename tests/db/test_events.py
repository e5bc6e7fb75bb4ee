"""Loan events reach a subscriber on one server process when another process commits."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from db.embedded import recreate_database
from db.migrate import upgrade_to_head
from db.session import create_engine, create_sessionmaker
from lending.access import Role
from lending.services import api_keys as key_service
from tests.factories import create_product

SUBSCRIBE = "subscription { loanEvents { type applicationId loanId entityId actor } }"
APPLY = """mutation { applyForLoan(input: {applicant: {fullName: "Ama Owusu",
  email: "ama@example.com"}, productCode: "PERSONAL-USD", amount: "5000", termMonths: 12}) {
  application { id } userErrors { code } } }"""
DECIDE = """mutation($id: ID!, $outcome: String!) { decideApplication(input: {applicationId: $id,
  outcome: $outcome, reason: "checked"}) { userErrors { code } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(port: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(150):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.ConnectError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"server on {port} did not start")


@pytest.fixture
async def two_servers(server_url) -> AsyncIterator[tuple[int, int, str]]:
    """Two server processes on one fresh database, and an ADMIN key."""
    name = "lending_events_test"
    url = await recreate_database(server_url, name)
    await asyncio.to_thread(upgrade_to_head, url)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        await create_product(engine)
        async with create_sessionmaker(engine)() as session, session.begin():
            _, key = await key_service.create_key(session, name="ops", role=Role.ADMIN)
    finally:
        await engine.dispose()
    ports = free_port(), free_port()
    env = os.environ | {"DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    processes = [
        subprocess.Popen(  # noqa: ASYNC220 - each server in its own process, by design
            [sys.executable, "-m", "graph.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        await asyncio.gather(*(wait_ready(port) for port in ports))
        yield ports[0], ports[1], key
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.to_thread(process.wait, 10)


async def next_message(ws) -> dict:
    async with asyncio.timeout(10):
        return json.loads(await ws.recv())


async def test_an_event_committed_on_one_process_reaches_a_subscriber_on_another(two_servers):
    port_a, port_b, key = two_servers
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

        # then A's subscriber hears exactly the committed decision, first
        message = await next_message(ws)
        assert message["type"] == "next", message
        event = message["payload"]["data"]["loanEvents"]
        assert event["type"] == "DECIDED"
        assert event["applicationId"] == app_id
        assert event["loanId"] is not None
        assert event["actor"] == "ops"


async def test_a_subscriber_needs_a_key(two_servers):
    port_a, _, _ = two_servers
    url = f"ws://127.0.0.1:{port_a}/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert (await next_message(ws))["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
        message = await next_message(ws)
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"
