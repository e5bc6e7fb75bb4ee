"""Operations sent over a WebSocket are charged to the key of the connection's
``connection_init``, as HTTP requests are: a query or subscription its bucket cannot pay for
runs nothing and is answered THROTTLED, told by gql, a client others wrote."""

from __future__ import annotations

import asyncio

import pytest
from gql import gql
from gql.transport.exceptions import TransportQueryError

from db.session import create_engine, create_sessionmaker
from lending.access import Budget, Role
from lending.services import api_keys as key_service
from tests.servers import servers
from tests.subscribers import subscribed, ws_client

PRODUCTS = "{ loanProducts { code } }"  # costs 100: a list of at most 100 products
# a loan's whole schedule with each event: more than the 50 points left
EVENTS = "subscription { loanEvents { type loan { schedule { installments { number } } } } }"


async def test_operations_over_a_websocket_are_charged_to_the_connection_key(server_url):
    async with servers(server_url, "lending_ws_budget", count=1) as running:
        engine = create_engine(running.url, pool_size=1, max_overflow=0)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                _, key = await key_service.create_key(
                    session, name="ws-budget", role=Role.SERVICER, budget=Budget(250, 1)
                )
        finally:
            await engine.dispose()
        async with ws_client(running.ports[0], key) as session:
            for left in (150, 50):
                result = await session.execute(gql(PRODUCTS), get_execution_result=True)
                assert result.extensions is not None
                status = result.extensions["cost"]["throttleStatus"]
                assert status["currentlyAvailable"] == left
            with pytest.raises(TransportQueryError) as refused:
                await session.execute(gql(PRODUCTS))
        [error] = refused.value.errors or []
        assert error["extensions"]["code"] == "THROTTLED"
        assert error["extensions"]["retryAfter"] >= 50
        # a subscription is charged as it starts: this one is refused before it listens…
        async with subscribed(ws_client(running.ports[0], key), EVENTS) as subscriber:
            first = await subscriber.next()
        assert (first.errors or [{}])[0]["extensions"]["code"] == "THROTTLED"
        # …and the ADMIN key, with a bucket of its own, is not held back
        async with ws_client(running.ports[0], running.key) as session:
            result = await session.execute(gql(PRODUCTS), get_execution_result=True)
            assert result.errors is None


# Field by field, a page of applicants with their applications takes tens of milliseconds.
HEAVY = """{ applicants(first: 50) { edges { node { fullName applications(first: 10) {
  edges { node { reference decisions { outcome reason } product { code } } } } } } } }"""


async def test_operations_over_one_websocket_take_places_of_their_key(server_url):
    env = {"KEY_MAX_CONCURRENCY": "1", "KEY_QUEUE_WAIT_S": "0.01", "COMPILED_READS": "off"}
    async with (
        servers(server_url, "lending_ws_share", count=1, env=env) as running,
        ws_client(running.ports[0], running.key) as session,
    ):
        answers = await asyncio.gather(
            *(session.execute(gql(HEAVY), get_execution_result=True) for _ in range(20)),
            return_exceptions=True,
        )
    refused = [a for a in answers if isinstance(a, TransportQueryError)]
    served = [a for a in answers if not isinstance(a, BaseException)]
    assert served, answers
    assert refused, "twenty operations at once on one connection, one place: some must wait"
    for error in refused:
        [detail] = error.errors or []
        assert detail["extensions"]["code"] == "THROTTLED", detail
        assert detail["extensions"]["retryable"] is True
        assert "requests at work already" in detail["message"]
