"""Behind PgBouncer in transaction mode (DB_POOLER=transaction): the same answers, no prepared
statement that outlives its transaction, the timeouts held in every transaction, LISTEN on the
direct connection, and no more PostgreSQL connections than the pooler's pool.

The compiled-read differential tests of tests/api/test_compiled_reads.py run here once more,
every app reaching its database through PgBouncer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bench.pgbouncer import PgBouncer
from db.session import create_engine, raw_connection
from graph.server.app import create_app
from graph.server.settings import Settings
from tests.api.test_compiled_reads import (
    DataSet,
    open_data_sets,
    test_a_payload_reads_alike_on_both_paths_for_every_role,
    test_every_corpus_read_is_answered_alike_by_both_paths,
    test_generated_reads_are_answered_alike_by_both_paths,
)
from tests.dbfixtures import http_client
from tests.servers import Servers, free_port, servers
from tests.subscribers import subscribed, ws_client

__all__ = [  # the differential tests, run again here through the pooler
    "test_a_payload_reads_alike_on_both_paths_for_every_role",
    "test_every_corpus_read_is_answered_alike_by_both_paths",
    "test_generated_reads_are_answered_alike_by_both_paths",
]

POOL = 3  # PostgreSQL connections PgBouncer may open: few, so that clients share them


@pytest.fixture(scope="module")
async def pooler(server_url: str) -> AsyncIterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the suite's server, with a small pool."""
    bouncer = PgBouncer(server_url, free_port(), pool_size=POOL)
    await bouncer.start()
    yield bouncer
    bouncer.remove()


@pytest.fixture(scope="module")
async def data_sets(server_url: str, pooler: PgBouncer) -> AsyncIterator[list[DataSet]]:
    """The differential tests' data sets, every app reaching them through the pooler."""
    async with open_data_sets(server_url, pooler) as sets:
        yield sets


@pytest.fixture(scope="module")
def generated() -> int:
    """Fewer generated documents than the direct run: the shapes are the same."""
    return 200


@pytest.mark.parametrize("pooled", [False, True], ids=["named", "unnamed"])
async def test_only_unnamed_statements_survive_the_pooler(database_url, pooler, pooled):
    """Why the mode exists. Three connections each hold a transaction, so PgBouncer lends each
    its own server connection, then again in the opposite order. A statement cached by name on
    the first server connection is asked for on another, where it does not exist; with
    DB_POOLER=transaction nothing is cached by name, and every answer is right."""
    engine = create_engine(pooler.url(database_url), pool_size=POOL, max_overflow=0, pooled=pooled)
    try:
        connections = [await engine.connect() for _ in range(POOL)]

        async def rounds() -> None:
            for round_ in range(4):
                for number, connection in enumerate(connections[:: 1 if round_ % 2 else -1]):
                    found = await connection.scalar(text("SELECT :n + 1"), {"n": number})
                    assert found == number + 1
                for connection in connections:
                    await connection.commit()

        if pooled:
            await rounds()
        else:
            with pytest.raises(DBAPIError, match=r"prepared statement .* does not exist"):
                await rounds()
        for connection in connections:
            await connection.close()
    finally:
        await engine.dispose()


def _pooled(database_url: str, pooler: PgBouncer, **settings: Any) -> Settings:
    return Settings(
        database_url=pooler.url(database_url),
        db_pooler="transaction",
        database_listen_url=database_url,
        **settings,
    )


@pytest.fixture
async def tight(database_url, pooler) -> AsyncIterator[Any]:
    """A pooled app whose statements may wait 0.5 s for a lock and run 1 s at most."""
    settings = _pooled(database_url, pooler, db_lock_timeout=0.5, db_statement_timeout=1.0)
    app = create_app(settings, settings.database_url or "")
    yield app
    await app.state.compiled.pool.close()
    await app.state.principals.close()
    await app.state.engine.dispose()


APPLY = """mutation($email: String!, $key: String) { applyForLoan(input: {applicant: {
  fullName: "Pooled One", email: $email}, productCode: "PERSONAL-USD", amount: "5000",
  termMonths: 12, idempotencyKey: $key}) { application { id reference } userErrors { code } } }"""
DECIDE = """mutation($id: ID!) { decideApplication(input: {applicationId: $id,
  outcome: "APPROVED", reason: "fine"}) { application { status } userErrors { code } } }"""
LOANS = "{ loans(first: 5) { edges { node { status principal } } } }"


async def _applied(client: httpx.AsyncClient, email: str) -> str:
    answer = await client.post("/graphql", json={"query": APPLY, "variables": {"email": email}})
    found = answer.json()["data"]["applyForLoan"]
    assert found["userErrors"] == [], found
    return str(found["application"]["id"])


async def test_a_row_lock_held_elsewhere_times_out_through_the_pooler(
    tight, admin_key, database_url, engine
):
    """lock_timeout is set in the mutation's own transaction: a writer queued behind a row
    lock gives up after 0.5 s with a retryable 503, as it does on a direct connection."""
    from tests.factories import create_product

    await create_product(engine)
    async with http_client(tight, admin_key) as client:
        application_id = await _applied(client, "locked@example.com")
        holder = await raw_connection(database_url)
        try:
            async with holder.transaction():
                await holder.execute("SELECT 1 FROM loan_applications FOR UPDATE")
                async with asyncio.timeout(10):  # without the timeout it would wait for ever
                    answer = await client.post(
                        "/graphql", json={"query": DECIDE, "variables": {"id": application_id}}
                    )
        finally:
            await holder.close()
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"]
        # once the lock is gone, the same decision goes through on the pooled connection
        again = await client.post(
            "/graphql", json={"query": DECIDE, "variables": {"id": application_id}}
        )
        assert again.json()["data"]["decideApplication"]["application"]["status"] == "APPROVED"


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "per-field"])
async def test_a_read_that_runs_too_long_is_cancelled_through_the_pooler(
    tight, admin_key, database_url, compiled
):
    """The timeouts hold for reads too, on both read paths. A compiled read runs in no
    transaction, where a setting would not hold behind the pooler: it is cancelled at the
    statement timeout by the client, through PgBouncer. A per-field read gives up waiting for
    the lock first (lock_timeout, set with its BEGIN)."""
    if not compiled:
        tight.state.compiled.enabled = False
    holder = await raw_connection(database_url)
    try:
        async with http_client(tight, admin_key) as client, holder.transaction():
            await holder.execute("LOCK TABLE loans IN ACCESS EXCLUSIVE MODE")
            async with asyncio.timeout(10):
                answer = await client.post("/graphql", json={"query": LOANS})
    finally:
        await holder.close()
        tight.state.compiled.enabled = True
    assert answer.status_code == 503, answer.text
    assert answer.json()["errors"][0]["extensions"]["retryable"] is True
    reason = "ran out of time" if compiled else "stayed locked for too long"
    assert reason in answer.text


@pytest.fixture(scope="module")
async def pooled_servers(server_url, pooler) -> AsyncIterator[Servers]:
    """Two `lending serve` processes reaching their database through the pooler."""
    async with servers(server_url, "lending_pooled", pooler=pooler) as found:
        yield found


SUBSCRIBE = "subscription { loanEvents { type applicationId } }"


async def test_servers_behind_the_pooler_write_notify_and_stay_within_its_pool(
    pooled_servers, pooler
):
    """Two processes with pools of 10 + 10 each share PgBouncer's 3 PostgreSQL connections;
    every mutation is applied once (retried with its idempotency key, it answers the same),
    subscribers on the other process hear each one (LISTEN goes direct), and PostgreSQL never
    sees more connections from the service than the pooler's pool."""
    (port_a, port_b), key = pooled_servers.ports, pooled_servers.key
    peak = 0
    done = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        connection = await raw_connection(pooled_servers.url)
        try:
            while not done.is_set():
                found = await connection.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name LIKE 'lending%'"
                )
                peak = max(peak, found)
                await asyncio.sleep(0.02)
        finally:
            await connection.close()

    watcher = asyncio.create_task(watch())
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        subscribed(ws_client(port_a, key), SUBSCRIBE) as events,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_b}", headers=headers) as b,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_a}", headers=headers) as a,
    ):

        async def apply_twice(number: int) -> tuple[str, str]:
            variables = {"email": f"pooled{number}@example.com", "key": str(uuid.uuid4())}
            request = {"query": APPLY, "variables": variables}
            first = await (a if number % 2 else b).post("/graphql", json=request)
            retried = await (b if number % 2 else a).post("/graphql", json=request)
            assert first.status_code == retried.status_code == 200, (first.text, retried.text)
            return first.text, retried.text

        answers = await asyncio.gather(*(apply_twice(n) for n in range(24)))
        heard = [(await events.next()).data["loanEvents"] for _ in range(24)]
        assert await events.nothing_within(0.5)
    done.set()
    await watcher
    assert all(first == retried for first, retried in answers)
    assert {event["type"] for event in heard} == {"SUBMITTED"}
    count = await _count(pooled_servers.url, "SELECT count(*) FROM loan_applications")
    assert count == 24
    assert 0 < peak <= POOL, peak


async def _count(url: str, sql: str) -> int:
    connection: asyncpg.Connection = await raw_connection(url)
    try:
        return int(await connection.fetchval(sql))
    finally:
        await connection.close()


def test_the_pooler_mode_needs_a_direct_connection_for_listen():
    """A transaction pooler cannot hold a LISTEN: the mode is refused without the direct URL."""
    pooler, primary = "postgresql://lending@pooler/lending", "postgresql://lending@primary/lending"
    with pytest.raises(ValidationError, match="DATABASE_LISTEN_URL"):
        Settings(database_url=pooler, db_pooler="transaction")
    settings = Settings(database_url=pooler, db_pooler="transaction", database_listen_url=primary)
    assert settings.pooled
    assert settings.direct_url(pooler) == primary
