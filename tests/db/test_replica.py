"""Read replicas: a real streaming standby of the test PostgreSQL, made with pg_basebackup -R.

The standby is this module's own server (a process group it starts, kills and restarts); the
app under test reads its queries from it (DATABASE_REPLICA_URL) and everything else from the
suite's server. The tests show where statements ran (the replica's pools or the primary's),
what the replica's counters and metrics say, and that losing the replica, or its falling
behind, costs no request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from db.reads.pool import ReadPool
from db.replica import LAGGING, OK, UNREACHABLE, Replica
from db.session import RequestSession, raw_connection
from graph.server.app import create_app
from graph.server.settings import Settings
from tests.dbfixtures import http_client
from tests.factories import create_product
from tests.servers import free_port
from tests.standby import RECOVERY, Standby, running_standby

MAX_LAG_MS = 300.0  # small, so that a paused replica is found lagging within a second or so

PRODUCTS = "query Products { loanProducts { code } }"  # compiled whole: the short path
MIXED = """query Mixed {
  products: loanProducts { code }
  preview: previewSchedule(input: {productCode: "PERSONAL-USD", amount: "1000", termMonths: 6}) {
    schedule { totalPayable }
  }
}"""  # a compiled root field beside one resolved per field (it reads the product)
REFERENCES = "query References { applications(first: 50) { edges { node { reference } } } }"
APPLY = """mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) {
  application { reference status } userErrors { code message } } }"""


@pytest.fixture(scope="module")
async def standby(server_url: str, database_url: str) -> AsyncIterator[Standby]:
    """A running standby of the suite's server (its test database migrated already)."""
    async with running_standby(server_url) as server:
        yield server


class Where:
    """Statements run, by server and pool: the ORM's (per-field reads, writes) and the
    compiled reads'."""

    def __init__(self, app: FastAPI) -> None:
        self.seen: Counter[str] = Counter()
        replica: Replica = app.state.replica
        for server, engine, pool in (
            ("primary", app.state.engine, app.state.compiled.pool),
            ("replica", replica.engine, replica.pool),
        ):
            event.listen(engine.sync_engine, "before_cursor_execute", self._counter(server, "orm"))
            pool.observers.append(self._counter(server, "compiled"))

    def _counter(self, server: str, pool: str) -> Any:
        def count(*_: Any) -> None:
            self.seen[f"{server} {pool}"] += 1

        return count

    def on(self, server: str) -> int:
        return sum(n for key, n in self.seen.items() if key.startswith(server))


@pytest.fixture(scope="module")
async def served(
    database_url: str, standby: Standby, app: FastAPI
) -> AsyncIterator[tuple[FastAPI, Where]]:
    """The service reading its queries from the standby, started as uvicorn starts it."""
    settings = Settings(
        database_url=database_url,
        database_replica_url=standby.url(str(make_url(database_url).database)),
        replica_max_lag_ms=MAX_LAG_MS,
    )
    service = create_app(settings, database_url, app.state.schema)
    where = Where(service)
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:  # the lifespan begins and ends in one task, as under uvicorn
        async with service.router.lifespan_context(service):
            started.set()
            await stop.wait()

    running, ready = asyncio.create_task(run()), asyncio.create_task(started.wait())
    await asyncio.wait([running, ready], return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        ready.cancel()
        running.result()  # startup failed: say why
    yield service, where
    stop.set()
    await running


@pytest.fixture
async def client(served: tuple[FastAPI, Where], admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(served[0], admin_key) as found:
        await found.post("/graphql", json={"query": "{ __typename }"})  # the key, cached
        yield found


@pytest.fixture
def replica(served: tuple[FastAPI, Where]) -> Replica:
    found: Replica = served[0].state.replica
    return found


@pytest.fixture
def where(served: tuple[FastAPI, Where]) -> Where:
    return served[1]


async def ask(client: httpx.AsyncClient, query: str, variables: dict | None = None) -> Any:
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body


async def until(condition: Any, within: float = 15.0) -> float:
    """Wait until ``condition()`` holds; the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < within, "timed out"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def visible(replica: Replica, engine: Any) -> None:
    """Wait until the replica has replayed everything the primary has flushed, and is ok."""
    async with engine.connect() as connection:
        target = await connection.scalar(text("SELECT pg_current_wal_flush_lsn()::text"))
    standby = await raw_connection(replica.url)
    try:
        started = time.monotonic()
        while not await standby.fetchval(
            "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", target
        ):
            assert time.monotonic() - started < 15, "the replica does not catch up"
            await asyncio.sleep(0.005)
    finally:
        await standby.close()
    await until(lambda: replica.state == OK)


def application(n: int) -> dict:
    return {
        "input": {
            "applicant": {"fullName": f"Replica {n}", "email": f"replica-{n}@example.com"},
            "productCode": "PERSONAL-USD",
            "amount": "5000",
            "termMonths": 12,
        }
    }


def scraped(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


async def test_queries_read_from_the_replica_mutations_from_the_primary(
    client, served, replica, where, engine
):
    # given a product, replicated
    await create_product(engine)
    await visible(replica, engine)

    # when a query runs its root fields compiled, then per field, and whole on the short path
    where.seen.clear()
    before = dict(replica.reads)
    mixed = await ask(client, MIXED)
    await ask(client, PRODUCTS)
    short = await ask(client, PRODUCTS)

    # then every statement ran on the replica, counted there, none on the primary
    assert mixed["extensions"]["compiled"] == ["products"]
    assert mixed["data"]["preview"]["schedule"]["totalPayable"]
    assert short["data"]["loanProducts"] == [{"code": "PERSONAL-USD"}]
    assert where.seen["replica compiled"] == 3, where.seen
    assert where.seen["replica orm"] >= 1, where.seen  # the preview's product
    assert where.on("primary") == 0, where.seen
    assert replica.reads[OK] - before[OK] == where.on("replica")
    assert replica.reads[LAGGING] == before[LAGGING]
    assert replica.reads[UNREACHABLE] == before[UNREACHABLE]

    # and those connections are the standby's, as the query's session is; a session not
    # known to be a query's (a mutation's, a subscription's) reads from the primary
    compiled = await served[0].state.compiled.replica.fetch_text(
        f"{RECOVERY}::text", [], served[0].state.compiled.pool
    )
    query, other = (RequestSession(served[0].state.sessionmaker, replica) for _ in range(2))
    query.for_query()
    try:
        in_query = await query.run(lambda session: session.scalar(text(RECOVERY)))
        in_other = await other.run(lambda session: session.scalar(text(RECOVERY)))
    finally:
        await query.close()
        await other.close()
    assert (compiled, in_query, in_other) == ("true", True, False)

    # and the replica is followed as keeping up
    assert served[0].state.replica.state == OK

    # when a mutation runs, its payload read included
    where.seen.clear()
    made = await ask(client, APPLY, application(1))

    # then it touched the primary only
    assert made["data"]["applyForLoan"]["application"]["status"] == "SUBMITTED"
    assert where.on("replica") == 0, where.seen
    assert where.on("primary") > 0, where.seen


async def test_a_write_is_read_back_from_the_replica_once_replicated(
    client, replica, where, engine
):
    # given a product, replicated, and a connection to the standby to watch it replay
    await create_product(engine)
    await visible(replica, engine)
    standby = await raw_connection(replica.url)
    replayed, answered, queries = [], [], []
    before = dict(replica.reads)
    try:
        for n in range(10):
            # when an application is made, then queries ask for it until one shows it
            made = await ask(client, APPLY, application(n))
            committed = time.monotonic()
            reference = made["data"]["applyForLoan"]["application"]["reference"]
            replaying = asyncio.create_task(replay_of(standby, reference))
            asked = 0
            while True:
                body = await ask(client, REFERENCES)
                asked += 1
                edges = body["data"]["applications"]["edges"]
                if reference in {edge["node"]["reference"] for edge in edges}:
                    break
                assert time.monotonic() - committed < 5, "the write never reached the replica"
            answered.append((time.monotonic() - committed) * 1000)
            replayed.append((await replaying - committed) * 1000)
            queries.append(asked)
    finally:
        await standby.close()

    # then each was seen on the replica, shortly: every query was answered there
    assert replica.reads[UNREACHABLE] == before[UNREACHABLE]
    assert replica.reads[LAGGING] == before[LAGGING]
    assert replica.reads[OK] - before[OK] == sum(queries)
    print(
        "replication delay, from the mutation's answer: on the standby after "
        f"{_figures(replayed)} ms; shown by a query after {_figures(answered)} ms "
        f"({sum(queries)} queries for {len(queries)} writes, all on the replica)"
    )


async def replay_of(standby: Any, reference: str) -> float:
    """When the standby first has the application ``reference`` (polled without pause)."""
    while not await standby.fetchval(
        "SELECT count(*) FROM loan_applications WHERE reference = $1", reference
    ):
        pass
    return time.monotonic()


def _figures(values: list[float]) -> str:
    ordered = sorted(values)
    return f"median {ordered[len(ordered) // 2]:.1f}, max {ordered[-1]:.1f}"


async def test_a_replica_killed_mid_load_costs_no_request_and_is_used_again(
    client, replica, where, engine, standby
):
    # given a product, replicated, and clients asking queries without pause
    await create_product(engine)
    await visible(replica, engine)
    answered: Counter[str] = Counter()
    stop = asyncio.Event()

    async def ask_on(query: str) -> None:
        while not stop.is_set():
            response = await client.post("/graphql", json={"query": query})
            body = response.json() if response.status_code == 200 else {}
            ok = response.status_code == 200 and "errors" not in body and body.get("data")
            answered["ok" if ok else "failed"] += 1
            await asyncio.sleep(0)

    def reads() -> dict[str, int]:
        return dict(replica.reads)

    askers = [asyncio.create_task(ask_on(q)) for q in (PRODUCTS, MIXED, PRODUCTS, MIXED)]
    try:
        await asyncio.sleep(0.3)
        before_kill = reads()

        # when the replica is killed (kill -9: every connection dies mid-use)
        standby.kill()
        killed = time.monotonic()
        await until(lambda: replica.state == UNREACHABLE)
        noticed = time.monotonic() - killed
        await asyncio.sleep(1.0)
        while_away = reads()

        # and started again
        restarted = time.monotonic()
        await standby.start()
        await until(lambda: replica.state == OK)
        back = time.monotonic() - restarted
        await asyncio.sleep(0.5)
        after = reads()
    finally:
        stop.set()
        await asyncio.gather(*askers)

    # then no request failed: the reads went to the primary while it was away, and to the
    # replica again once it was back
    on_primary = while_away[UNREACHABLE] - before_kill[UNREACHABLE]
    on_replica_again = after[OK] - while_away[OK]
    print(
        f"replica killed under load: {answered['ok']} requests answered, "
        f"{answered['failed']} failed; unusable noticed in {noticed * 1000:.0f} ms; "
        f"{on_primary} reads on the primary while it was away; restarted and used again "
        f"after {back:.2f} s, then {on_replica_again} reads on it in 0.5 s"
    )
    assert answered["failed"] == 0
    assert answered["ok"] > 50
    assert on_primary > 0
    assert on_replica_again > 0
    # (under a loaded machine the replica back may fall behind again: the gauge says which)
    state = replica.state
    metrics = scraped((await client.get("/metrics")).text)
    assert metrics[("lending_replica_reads_total", (("route", "primary_unreachable"),))] > 0
    assert metrics[("lending_replica_reads_total", (("route", "replica"),))] > 0
    if replica.state == state:
        assert metrics[("lending_replica_state", (("state", state),))] == 1
    assert state in (OK, LAGGING)


async def test_a_lagging_replica_is_not_read_until_it_catches_up(client, replica, where, engine):
    # given a product, replicated, and a standby that stops replaying
    await create_product(engine)
    await visible(replica, engine)
    standby = await raw_connection(replica.url)
    try:
        await standby.execute("SELECT pg_wal_replay_pause()")
        await until_paused(standby)

        # when the primary writes meanwhile
        made = await ask(client, APPLY, application(1))
        reference = made["data"]["applyForLoan"]["application"]["reference"]
        took = await until(lambda: replica.state == LAGGING)
        before = dict(replica.reads)
        where.seen.clear()
        body = await ask(client, REFERENCES)
        on_replica = await standby.fetchval(
            "SELECT count(*) FROM loan_applications WHERE reference = $1", reference
        )

        # then queries read from the primary, which has the write the replica lacks
        edges = body["data"]["applications"]["edges"]
        assert [edge["node"]["reference"] for edge in edges] == [reference]
        assert on_replica == 0
        assert replica.reads[LAGGING] > before[LAGGING]
        assert replica.reads[OK] == before[OK]
        assert where.on("replica") == 0, where.seen
        metrics = scraped((await client.get("/metrics")).text)
        assert metrics[("lending_replica_state", (("state", "lagging"),))] == 1
        assert metrics[("lending_replica_lag_seconds", ())] > MAX_LAG_MS / 1000
        lag_seen = replica.lag_ms
    finally:
        await standby.execute("SELECT pg_wal_replay_resume()")
        await standby.close()

    # and once it replays again, it is read again
    caught_up = await until(lambda: replica.state == OK)
    before = dict(replica.reads)
    await ask(client, REFERENCES)
    assert replica.reads[OK] > before[OK]
    print(
        f"replay paused: found lagging {took:.2f} s after the write ({lag_seen:.0f} ms behind); "
        f"read again {caught_up:.2f} s after replay resumed"
    )


async def until_paused(standby: Any) -> None:
    for _ in range(500):
        if await standby.fetchval("SELECT pg_get_wal_replay_pause_state()") == "paused":
            return
        await asyncio.sleep(0.01)
    raise AssertionError("replay did not pause")


# ---- the parts, without a replica ---------------------------------------------------------


@pytest.fixture
def detached() -> Replica:
    """A Replica nothing connects to (its engine opens connections only when used)."""
    return Replica("postgresql://nobody@/none?host=/nowhere", "postgresql://x@/y", max_lag_ms=100)


def test_the_lag_is_how_long_ago_the_primary_was_first_ahead(detached: Replica) -> None:
    # given primary positions seen at t = 10, 10.5, 11 s
    detached._positions.extend([(10.0, 100), (10.5, 200), (11.0, 300)])
    # then a replica that replayed all is not behind; one that missed what was there at 10.5 s
    # is behind since then; one behind everything remembered is judged by its last commit
    assert detached.lag(300, 50_000.0, now=11.2) == 0.0
    assert detached.lag(150, None, now=11.2) == pytest.approx(700.0)
    assert detached.lag(250, None, now=11.2) == pytest.approx(200.0)
    assert detached.lag(50, 1234.0, now=11.2) == 1234.0
    assert detached.lag(50, None, now=11.2) == math.inf


def test_only_a_replica_gone_away_sends_reads_to_the_primary(detached: Replica) -> None:
    detached.state = OK
    # a statement too slow, or wrong, is the query's own: it fails as it would on the primary
    assert detached.fallback(asyncpg.QueryCanceledError("statement timeout")) is None
    assert detached.fallback(ValueError("a bug")) is None
    assert detached.state == OK
    # a read cancelled to let replay go on is read again on the primary; the replica stays
    assert detached.fallback(asyncpg.SerializationError("conflict with recovery")) == UNREACHABLE
    assert detached.state == OK
    # a replica that cannot be reached is not used again until a check finds it back
    assert detached.fallback(ConnectionRefusedError()) == UNREACHABLE
    assert detached.state == UNREACHABLE


async def test_a_read_the_replica_cannot_answer_is_read_on_the_primary(
    database_url: str, app: FastAPI
) -> None:
    # given a replica that the last check found well, but that is gone now
    gone = Replica(
        f"postgresql://postgres@:{free_port()}/none?host=/nonexistent",
        database_url,
        max_lag_ms=100,
        pool_timeout=1.0,
    )
    gone.state = OK
    primary = ReadPool(database_url, 1)
    session = RequestSession(app.state.sessionmaker, gone)
    session.for_query()
    try:
        # when a compiled read, then a per-field one, are sent to it
        compiled = await gone.fetch_text(f"{RECOVERY}::text", [], primary)
        gone.state = OK
        per_field = await session.run(lambda s: s.scalar(text(RECOVERY)))
    finally:
        await session.close()
        await primary.close()
        await gone.close()
    # then both are answered by the primary, counted so, and the replica is left alone
    assert (compiled, per_field) == ("false", False)
    assert gone.reads == {OK: 0, LAGGING: 0, UNREACHABLE: 2}
    assert gone.state == UNREACHABLE


def test_the_replica_settings_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("DATABASE_REPLICA_URL", raising=False)
    monkeypatch.delenv("REPLICA_MAX_LAG_MS", raising=False)
    default = Settings(_env_file=None)
    assert (default.database_replica_url, default.replica_max_lag_ms) == (None, 1000.0)
    monkeypatch.setenv("DATABASE_REPLICA_URL", "postgresql://reader@replica/lending")
    monkeypatch.setenv("REPLICA_MAX_LAG_MS", "250")
    found = Settings()
    assert (found.database_replica_url, found.replica_max_lag_ms) == (
        "postgresql://reader@replica/lending",
        250.0,
    )


def test_without_a_replica_url_there_is_no_replica(app: FastAPI) -> None:
    assert app.state.replica is None
    assert app.state.compiled.replica is None
