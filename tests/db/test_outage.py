"""The database goes away and comes back: clean retryable answers, nothing half-written.

These tests own a PostgreSQL of their own (stopped and started as a restart or a failover
would: a fast shutdown that disconnects every client), so the rest of the suite never sees it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from db.embedded import EmbeddedPostgres, recreate_database
from db.migrate import upgrade_to_head
from db.session import create_engine, create_sessionmaker, raw_connection
from graph.server.app import create_app
from graph.server.settings import Settings
from lending.access import Role
from lending.services import api_keys as key_service
from tests.dbfixtures import http_client
from tests.factories import create_product
from tests.servers import servers
from tests.subscribers import subscribed, ws_client

APPLY = """mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) {
  application { id status version } userErrors { code field message } replayed } }"""
DECIDE = """mutation($input: DecideApplicationInput!) { decideApplication(input: $input) {
  application { status } decision { outcome } userErrors { code message } replayed } }"""
PRODUCTS = "{ loanProducts { code } }"
NESTED = "{ applications(first: 5) { edges { node { reference applicant { email } } } } }"


@dataclass
class Database:
    """A PostgreSQL the test may stop and start, with a migrated database on it."""

    server: EmbeddedPostgres
    url: str
    key: str


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("outage")) / "pg")
    server_url = server.start()

    async def prepare() -> Database:
        url = await recreate_database(server_url, "lending_outage")
        await asyncio.to_thread(upgrade_to_head, url)
        engine = create_engine(url, pool_size=1, max_overflow=0)
        try:
            await create_product(engine)
            async with create_sessionmaker(engine)() as session, session.begin():
                _, key = await key_service.create_key(session, name="ops", role=Role.ADMIN)
        finally:
            await engine.dispose()
        return Database(server, url, key)

    yield asyncio.run(prepare())
    server.stop()


@pytest.fixture
async def app(database: Database) -> AsyncIterator[FastAPI]:
    settings = Settings(database_url=database.url, db_pool_timeout=1.0, db_pool_size=4)
    served = create_app(settings, database.url)
    yield served
    await served.state.compiled.pool.close()
    await served.state.principals.close()
    await served.state.engine.dispose()


@pytest.fixture
async def client(app: FastAPI, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(app, database.key) as client:
        yield client


async def post(client: httpx.AsyncClient, query: str, variables: dict | None = None):
    return await client.post("/graphql", json={"query": query, "variables": variables or {}})


def application_input(n: int, key: str | None = None) -> dict:
    return {
        "input": {
            "applicant": {"fullName": f"Outage {n}", "email": f"outage-{n}@example.com"},
            "productCode": "PERSONAL-USD",
            "amount": "5000",
            "termMonths": 12,
            "idempotencyKey": key,
        }
    }


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert set(body) == {"errors"}
    [error] = body["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["extensions"]["retryable"] is True
    assert error["message"].startswith("Service unavailable")


@pytest.fixture
def outage(database: Database) -> Iterator[EmbeddedPostgres]:
    """The test's database server; running again after the test, whatever happened."""
    yield database.server
    database.server.resume()


async def test_requests_while_the_database_is_down_are_503_and_retryable(
    app, client, outage, caplog
):
    # given a warm service: key cached, documents planned, connections pooled
    for query in (PRODUCTS, NESTED):
        assert (await post(client, query)).status_code == 200
    assert (await post(client, APPLY, application_input(1))).status_code == 200

    # when PostgreSQL stops as a restart would
    await asyncio.to_thread(outage.interrupt)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        answers = [
            await post(client, PRODUCTS),  # compiled, on the short path
            await post(client, NESTED),
            await post(client, APPLY, application_input(2, "outage-2")),
            await client.get("/graphql", params={"query": PRODUCTS}),
        ]
        ready = await client.get("/readyz")
        async with http_client(app, "lnd_never_seen") as stranger:
            unknown_key = await post(stranger, PRODUCTS)

    # then every GraphQL request is a clean 503 the client can retry
    for response in [*answers, unknown_key]:
        assert_unavailable(response)
    assert ready.status_code == 503
    # and the log says so once, without a traceback
    warnings = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info]


async def test_the_service_recovers_by_itself_with_no_stale_connection(client, outage):
    # given pooled connections on both pools, opened before the database restarts
    await asyncio.gather(*(post(client, PRODUCTS) for _ in range(4)))
    await asyncio.gather(*(post(client, NESTED) for _ in range(4)))
    assert (await post(client, APPLY, application_input(3))).status_code == 200

    # when PostgreSQL restarts while nobody asks anything
    await asyncio.to_thread(outage.interrupt)
    await asyncio.to_thread(outage.resume)
    back = time.monotonic()

    # then the very first requests succeed, on every path, concurrently
    answers = await asyncio.gather(
        *(post(client, PRODUCTS) for _ in range(4)),
        *(post(client, NESTED) for _ in range(4)),
        post(client, APPLY, application_input(4)),
    )
    assert [r.status_code for r in answers] == [200] * len(answers), [r.text for r in answers]
    assert all("errors" not in r.json() for r in answers)
    assert time.monotonic() - back < 1.0
    assert (await client.get("/readyz")).status_code == 200


async def test_recovery_after_requests_during_the_outage(client, outage):
    assert (await post(client, NESTED)).status_code == 200
    await asyncio.to_thread(outage.interrupt)
    assert_unavailable(await post(client, NESTED))
    await asyncio.to_thread(outage.resume)
    back = time.monotonic()
    while (await post(client, NESTED)).status_code != 200:
        assert time.monotonic() - back < 1.0, "not recovered within a second"
        await asyncio.sleep(0.05)
    answers = await asyncio.gather(*(post(client, q) for q in (PRODUCTS, NESTED) * 4))
    assert [r.status_code for r in answers] == [200] * 8


async def test_a_mutation_cut_off_by_an_outage_writes_nothing_and_its_retry_applies_once(
    client, database, outage
):
    # given an application, and its row locked from outside so that a decision must wait
    applied = (await post(client, APPLY, application_input(5))).json()
    application = applied["data"]["applyForLoan"]["application"]
    blocker = await raw_connection(database.url)
    await blocker.execute("BEGIN")
    await blocker.execute("SELECT 1 FROM loan_applications WHERE reference IS NOT NULL FOR UPDATE")
    decide = {
        "input": {
            "applicationId": application["id"],
            "outcome": "APPROVED",
            "reason": "Scored well",
            "idempotencyKey": "decide-5",
        }
    }

    # when the database stops while the decision waits for its lock
    pending = asyncio.create_task(post(client, DECIDE, decide))
    await asyncio.sleep(0.3)
    await asyncio.to_thread(outage.interrupt)
    cut_off = await pending

    # then the client is told to retry, and nothing of the decision was kept
    assert_unavailable(cut_off)
    await asyncio.to_thread(outage.resume)
    engine = create_engine(database.url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            decisions = await connection.scalar(text("SELECT count(*) FROM decisions"))
            status = await connection.scalar(
                text("SELECT status FROM loan_applications ORDER BY id DESC LIMIT 1")
            )
        assert decisions == 0
        assert status == "SUBMITTED"

        # and the retry with the same key applies it exactly once
        retried = (await post(client, DECIDE, decide)).json()["data"]["decideApplication"]
        again = (await post(client, DECIDE, decide)).json()["data"]["decideApplication"]
        assert retried["userErrors"] == []
        assert retried["replayed"] is False
        assert again["replayed"] is True
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT count(*) FROM decisions")) == 1
            assert await connection.scalar(text("SELECT count(*) FROM loans")) == 1
    finally:
        await engine.dispose()


SUBSCRIBE = "subscription { loanEvents { type applicationId } }"


async def test_a_subscriber_is_told_of_the_outage_and_hears_events_again_afterwards(outage):
    async with servers(outage.url, "lending_outage_events", count=1) as found:
        port, key = found.ports[0], found.key
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            subscribed(ws_client(port, key), SUBSCRIBE) as events,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as client,
        ):
            # given a gql subscriber listening
            # when the database stops, then the subscriber is told, once, and stays subscribed
            await asyncio.to_thread(outage.interrupt)
            told = await events.next()
            [error] = told.errors
            assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert error["extensions"]["retryable"] is True

            # and once it is back, events committed after the listener has reconnected (within
            # about a second) reach it again, without subscribing anew
            await asyncio.to_thread(outage.resume)
            back = time.monotonic()
            heard = None
            for attempt in range(30):
                app_id = await _decided_application(client, 100 + attempt)
                try:
                    while heard is None:  # its SUBMITTED first, then its DECIDED
                        event = (await events.next(0.3)).data["loanEvents"]
                        if event["type"] == "DECIDED":
                            heard = event
                except TimeoutError:
                    continue
                break
            assert heard == {"type": "DECIDED", "applicationId": app_id}, heard
            assert time.monotonic() - back < 5


async def _decided_application(client: httpx.AsyncClient, n: int) -> str:
    """A new application, decided; retrying 503s as a client would meanwhile."""
    for _ in range(50):
        response = await post(client, APPLY, application_input(n))
        if response.status_code == 200:
            break
        assert response.status_code == 503, response.text
        await asyncio.sleep(0.1)
    app_id: str = response.json()["data"]["applyForLoan"]["application"]["id"]
    decide = {"input": {"applicationId": app_id, "outcome": "APPROVED", "reason": "ok"}}
    decided = await post(client, DECIDE, decide)
    assert decided.status_code == 200, decided.text
    return app_id


async def test_sigterm_lets_the_request_in_flight_finish(outage):
    async with servers(outage.url, "lending_outage_shutdown", count=1) as found:
        port, key = found.ports[0], found.key
        process = found.processes[0]
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=20
        ) as client:
            applied = (await post(client, APPLY, application_input(91))).json()
            app_id = applied["data"]["applyForLoan"]["application"]["id"]
            # given a decision waiting on a row lock held from outside
            blocker = await raw_connection(found.url)
            await blocker.execute("BEGIN")
            await blocker.execute("SELECT 1 FROM loan_applications FOR UPDATE")
            decide = {"input": {"applicationId": app_id, "outcome": "REJECTED", "reason": "no"}}
            pending = asyncio.create_task(post(client, DECIDE, decide))
            await asyncio.sleep(0.5)

            # when the server is asked to stop, and the lock is released a moment later
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            await blocker.execute("ROLLBACK")
            await blocker.close()

            # then the request in flight is answered in full, and the server exits cleanly
            answered = await pending
            assert answered.status_code == 200, answered.text
            assert answered.json()["data"]["decideApplication"]["userErrors"] == []
            assert await asyncio.to_thread(process.wait, 15) == 0


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_with_a_drain_fails_readiness_first_and_serves_on(outage, workers):
    """SHUTDOWN_DRAIN: after SIGTERM /readyz answers 503 at once, so that a load balancer takes
    the process out, while requests are still served on every worker; then it stops."""
    args = ("--workers", str(workers))
    env = {"SHUTDOWN_DRAIN": "1.5"}
    async with servers(outage.url, "lending_outage_drain", count=1, args=args, env=env) as found:
        port, key = found.ports[0], found.key
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=20
        ) as client:
            assert (await client.get("/readyz")).status_code == 200
            found.processes[0].send_signal(signal.SIGTERM)
            began = time.monotonic()
            while (ready := await client.get("/readyz")).status_code == 200:
                assert time.monotonic() - began < 1, "readiness did not fail"
                await asyncio.sleep(0.02)
            assert ready.status_code == 503
            assert ready.json() == {"status": "draining"}
            for _ in range(2 * workers):  # each worker answers a fresh connection meanwhile
                answered = await client.post(
                    "/graphql",
                    json={"query": "{ viewer { role } }"},
                    headers={"Connection": "close"},
                )
                assert answered.status_code == 200, answered.text
            assert await asyncio.to_thread(found.processes[0].wait, 15) == 0
            assert time.monotonic() - began >= 1.5
