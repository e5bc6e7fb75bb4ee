"""`make cluster`: the service as operators run it past one machine, under load and faults.

HAProxy (deploy/haproxy.cfg, as committed) on one port in front of three `lending serve
--workers 2` processes; PgBouncer in transaction mode (deploy/pgbouncer.ini) in front of the
primary, which the processes reach with DB_POOLER=transaction (LISTEN goes to the primary
directly); a streaming replica that their queries read from. Against it run 64 clients mixing
reads and payments with idempotency keys (each retried on a 503 or a dropped connection, as
the README tells agents to), and 50 WebSocket subscribers each following one loan (gql, over
HAProxy, subscribing again whenever they are cut off). Then, one after the other:

- kill -9 one API process: no payment lost or made twice, the failures seen are only
  retryable 503s or dropped connections, and HAProxy takes the process out within its
  health checks;
- a rolling restart of all three with SIGTERM (each drains first, SHUTDOWN_DRAIN): no request
  fails, and subscribers, closed with 1012, subscribe again and hear every later event of
  their loan;
- PgBouncer restarted: only retryable answers while it is away, and answers again within 1 s
  of its return (the figures say when each process's own /readyz was ok again, and when
  HAProxy had them all in);
- all along, PostgreSQL never sees more connections from the processes than PgBouncer's pool.

The figures (requests and failures by kind and phase, detection and recovery times, peak
connections) are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import GraphQLRequest

from bench.pgbouncer import PgBouncer
from db.reads.plan import global_id
from db.session import raw_connection
from tests.servers import free_port, prepared_database, wait_ready
from tests.standby import running_standby
from tests.subscribers import ws_client

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CLIENTS = 64
SUBSCRIBERS = 50
POOL = 20  # PgBouncer's server connections
INTER, FALL = 0.25, 2  # deploy/haproxy.cfg's health checks
DRAIN = 1.0  # SHUTDOWN_DRAIN: above INTER x FALL
SETTLE = 0.5  # after subscribing, before the server is surely listening

APPLY = """mutation($email: String!, $key: String!) { applyForLoan(input: {applicant: {
  fullName: "Cluster Borrower", email: $email}, productCode: "PERSONAL-USD", amount: "5000",
  termMonths: 12, idempotencyKey: $key}) { application { id } userErrors { code } } }"""
DECIDE = """mutation($id: ID!, $key: String!) { decideApplication(input: {applicationId: $id,
  outcome: "APPROVED", reason: "fine", idempotencyKey: $key}) {
  loan { id } userErrors { code } } }"""
DISBURSE = """mutation($id: ID!, $key: String!) { disburseLoan(input: {loanId: $id,
  idempotencyKey: $key}) { loan { status } userErrors { code } } }"""
PAY = """mutation($id: ID!, $key: String!) { recordPayment(input: {loanId: $id, amount: "0.01",
  idempotencyKey: $key}) { payment { id } userErrors { code } } }"""
READS = (
    "{ loans(first: 5) { edges { node { id status principal } } } }",
    """query($id: ID!) { node(id: $id) { ... on Loan { status payoffAmount
      payments(first: 3) { edges { node { amount } } } } } }""",
)
FOLLOW = "subscription($id: ID) { loanEvents(loanId: $id) { type entityId } }"


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(f"{name} is not installed: `make cluster` installs it")
    return found


class Api:
    """One `lending serve --workers 2`, in a process group of its own."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        command = [sys.executable, "-m", "graph.cli", "serve", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - a server of its own, by design
                [*command, "--workers", "2"],
                env=os.environ | self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        await wait_ready(self.port, tries=300)

    def kill(self) -> None:
        """kill -9 the process and its workers: as a machine that dies."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    async def terminate(self) -> None:
        """SIGTERM, and wait for it to drain, finish what is in flight and exit."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self.process.wait, 30)
        assert code == 0, f"exit status {code}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


class HAProxy:
    """deploy/haproxy.cfg as committed, its addresses from the environment."""

    def __init__(self, apis: list[Api], base: Path) -> None:
        self.port = free_port()
        self.socket = base / "haproxy.sock"
        self.env = {
            "LISTEN": f"127.0.0.1:{self.port}",
            "STATS_SOCKET": str(self.socket),
            "DEPLOY": str(DEPLOY),
            **{f"API{n}": f"127.0.0.1:{api.port}" for n, api in enumerate(apis, 1)},
        }
        self.log = base / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - a server of its own, by design
                [_binary("haproxy"), "-db", "-f", str(DEPLOY / "haproxy.cfg")],
                env=os.environ | self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        await until(lambda: self.all_up(), 15)

    async def states(self) -> dict[str, str]:
        """Each server's state as HAProxy's runtime API tells it (UP, DOWN …)."""
        reader, writer = await asyncio.open_unix_connection(str(self.socket))
        writer.write(b"show stat\n")
        await writer.drain()
        text = (await reader.read()).decode()
        writer.close()
        lines = [line.split(",") for line in text.splitlines() if line and line[0] != "#"]
        return {row[1]: row[17] for row in lines if row[0] == "api" and row[1].startswith("api")}

    async def all_up(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.log.read_text()
        try:
            return set((await self.states()).values()) == {"UP"}
        except OSError:  # its socket is not there yet
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


async def until(condition: Callable[[], Awaitable[bool]], within: float) -> float:
    """Seconds until ``condition`` held (polled every 20 ms); fails after ``within``."""
    began = time.monotonic()
    while not await condition():
        assert time.monotonic() - began < within, "condition not met in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - began


@dataclass
class Tally:
    """What the clients saw, by phase: answers by kind, and payments made."""

    phase: str = "warm-up"
    seen: Counter[tuple[str, str]] = field(default_factory=Counter)
    unavailable: Counter[str] = field(default_factory=Counter)  # why, for each 503
    payments: int = 0  # payments the clients were told are recorded

    def count(self, kind: str) -> None:
        self.seen[(self.phase, kind)] += 1

    def failures(self, phase: str) -> Counter[str]:
        return Counter({k: n for (p, k), n in self.seen.items() if p == phase and k != "ok"})


async def call(
    client: httpx.AsyncClient, tally: Tally, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """One request, sent again (the same idempotency key) on a 503 or a dropped connection,
    as an agent does; any other failure fails the test."""
    for _ in range(200):
        try:
            answer = await client.post("/graphql", json={"query": query, "variables": variables})
        except httpx.TransportError:
            tally.count("dropped connection")
            await asyncio.sleep(0.1)
            continue
        if answer.status_code == 503:
            body = answer.json()
            assert body["errors"][0]["extensions"]["retryable"] is True, answer.text
            tally.count("503")
            tally.unavailable[f"{tally.phase}: {body['errors'][0]['message'][:80]}"] += 1
            await asyncio.sleep(0.1)
            continue
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert "errors" not in body, answer.text
        tally.count("ok")
        data: dict[str, Any] = body["data"]
        return data
    raise AssertionError(f"no answer after 200 tries: {query}")


@dataclass
class Follower:
    """A subscriber following one loan; when it was listening, and what it heard."""

    loan: str
    heard: set[str] = field(default_factory=set)
    listening: list[list[float]] = field(default_factory=list)  # [since, until] pairs
    closes: Counter[str] = field(default_factory=Counter)

    async def run(self, port: int, key: str) -> None:
        request = GraphQLRequest(FOLLOW, variable_values={"id": self.loan})
        while True:
            began = time.time()
            self.listening.append([began + SETTLE, float("inf")])
            try:
                async with ws_client(port, key) as session:
                    async for result in session.transport.subscribe(request):
                        if result.data:
                            self.heard.add(result.data["loanEvents"]["entityId"])
            except asyncio.CancelledError:
                self.listening[-1][1] = time.time()
                raise
            except Exception as error:
                cause = getattr(error.__cause__, "rcvd", None)
                self.closes[f"close {cause.code}" if cause else type(error).__name__] += 1
            self.listening[-1][1] = time.time()
            await asyncio.sleep(0.05)

    def missed(self, payments: list[tuple[int, float]]) -> list[int]:
        """Payments on the loan recorded while it was surely listening, and not heard."""
        return [
            payment
            for payment, at in payments
            if any(since <= at <= end - SETTLE for since, end in self.listening)
            and global_id("Payment", payment) not in self.heard
        ]


@pytest.fixture
async def topology(server_url: str) -> AsyncIterator[dict[str, Any]]:
    """The whole topology, up; torn down afterwards whatever happened."""
    url, key = await prepared_database(server_url, "lending_cluster")
    base = Path(tempfile.mkdtemp(prefix="lending-cluster-"))
    bouncer = PgBouncer(server_url, free_port(), pool_size=POOL)
    apis: list[Api] = []
    proxy: HAProxy | None = None
    async with running_standby(server_url) as standby:
        try:
            await bouncer.start()
            env = {
                "DATABASE_URL": bouncer.url(url),
                "DB_POOLER": "transaction",
                "DATABASE_LISTEN_URL": url,
                "DATABASE_REPLICA_URL": standby.url("lending_cluster"),
                "SHUTDOWN_DRAIN": str(DRAIN),
                "LOG_LEVEL": "WARNING",
            }
            apis = [Api(env, base / f"api{n}.log") for n in range(1, 4)]
            await asyncio.gather(*(api.start() for api in apis))
            proxy = HAProxy(apis, base)
            await proxy.start()
            yield {"url": url, "key": key, "bouncer": bouncer, "apis": apis, "proxy": proxy}
        finally:
            for api in apis:
                api.stop()
            if proxy is not None:
                proxy.stop()
            bouncer.remove()
            _report_tracebacks(base)
            shutil.rmtree(base, ignore_errors=True)


def _report_tracebacks(base: Path) -> None:
    for log in sorted(base.glob("*.log")):
        text = log.read_text()
        if "Traceback" in text:
            print(f"{log.name}: {text.count('Traceback')} tracebacks; the last:")
            print(text[text.rindex("Traceback") :][:3000])


async def test_the_cluster_survives_kills_restarts_and_a_pooler_restart(topology):
    url, key = topology["url"], topology["key"]
    proxy: HAProxy = topology["proxy"]
    apis: list[Api] = topology["apis"]
    bouncer: PgBouncer = topology["bouncer"]
    tally = Tally()
    figures: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=CLIENTS + 8)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{proxy.port}", headers=headers, timeout=60, limits=limits
    ) as client:
        # given 50 disbursed loans, each followed by a subscriber, and 64 clients at work
        loans = await asyncio.gather(*(_loan(client, tally, n) for n in range(SUBSCRIBERS)))
        followers = [Follower(loan) for loan in loans]
        following = [asyncio.create_task(f.run(proxy.port, key)) for f in followers]
        stop = asyncio.Event()
        peak: Counter[tuple[str, str]] = Counter()
        watcher = asyncio.create_task(_watch_connections(url, stop, peak, tally))
        workers = [
            asyncio.create_task(_client(client, tally, loans, stop, n)) for n in range(CLIENTS)
        ]
        await asyncio.sleep(3)

        # when one API process is killed with -9
        tally.phase = "kill -9"
        apis[0].kill()
        figures["down after kill -9 (s)"] = round(
            await until(lambda: _is_down(proxy, "api1"), 10), 2
        )
        await asyncio.sleep(2)
        await apis[0].start()
        figures["back up after restart (s)"] = round(await until(proxy.all_up, 10), 2)
        await asyncio.sleep(1)

        # when all three are restarted in turn with SIGTERM
        tally.phase = "rolling restart"
        for api in apis:
            await api.terminate()
            await api.start()
            await until(proxy.all_up, 10)
        await asyncio.sleep(2)

        # when PgBouncer goes away and comes back
        tally.phase = "pooler restart"
        bouncer.stop()
        await asyncio.sleep(2)
        await bouncer.start()
        returned = time.monotonic()
        ready = asyncio.create_task(_ready_again(apis))
        figures["answering after PgBouncer's return (s)"] = round(await _answering(client), 2)
        # (which tells a slow process from a slow balancer, should the bound above be missed)
        figures["each process's /readyz ok after PgBouncer's return (s)"] = await ready
        await until(proxy.all_up, 10)
        figures["all processes up in HAProxy after its return (s)"] = round(
            time.monotonic() - returned, 2
        )
        await asyncio.sleep(2)

        tally.phase = "after"
        await asyncio.sleep(2)
        stop.set()
        await asyncio.gather(*workers)
        await watcher
        await asyncio.sleep(1.0)  # the last events reach their subscribers
        for task in following:
            task.cancel()
        await asyncio.gather(*following, return_exceptions=True)

    payments = await _payments(url, loans)
    recorded = sum(len(found) for found in payments.values())
    missed = {f.loan: f.missed(payments[f.loan]) for f in followers}
    closes = sum((f.closes for f in followers), Counter())
    figures |= {
        "requests": sum(tally.seen.values()),
        "answers by phase and kind": dict(sorted(tally.seen.items())),
        "why 503": dict(tally.unavailable),
        "payments recorded, told recorded": (recorded, tally.payments),
        "subscribers' closes": dict(closes),
        "events missed": sum(len(m) for m in missed.values()),
        "peak PostgreSQL connections through PgBouncer, by phase (pool 20)": {
            phase: n for (phase, kind), n in peak.items() if kind == "pooled"
        },
        "peak direct connections (LISTEN, replica checks)": max(
            n for (_, kind), n in peak.items() if kind == "direct"
        ),
    }
    print("\ncluster figures:")
    for name, value in figures.items():
        print(f"  {name}: {value}")

    # then no payment was lost or made twice
    assert recorded == tally.payments
    # and what failed was only ever retryable, and nothing failed in a rolling restart
    for phase in ("warm-up", "kill -9", "rolling restart", "pooler restart", "after"):
        assert set(tally.failures(phase)) <= {"503", "dropped connection"}
    assert not tally.failures("rolling restart")
    assert not tally.failures("after")
    # and HAProxy took the killed process out within its health checks
    assert figures["down after kill -9 (s)"] <= (FALL + 1) * INTER + 0.5
    # and answers came back within a second of PgBouncer's return
    assert figures["answering after PgBouncer's return (s)"] <= 1.0
    # and every subscriber, closed with 1012 on restarts, heard every later event of its loan
    assert closes["close 1012"] >= 1
    assert not any(missed.values()), missed
    # and PostgreSQL never saw more connections from the processes than PgBouncer's pool (but
    # while PgBouncer restarts, when the old server connections are still closing)
    assert max(n for (p, k), n in peak.items() if k == "pooled" and p != "pooler restart") > 0
    assert all(n <= POOL for (p, k), n in peak.items() if k == "pooled" and p != "pooler restart")


async def _loan(client: httpx.AsyncClient, tally: Tally, number: int) -> str:
    """A disbursed loan of its own borrower; its global id."""
    email = f"cluster{number}@example.com"
    applied = await call(client, tally, APPLY, {"email": email, "key": f"apply-{number}"})
    application = applied["applyForLoan"]["application"]["id"]
    decided = await call(client, tally, DECIDE, {"id": application, "key": f"decide-{number}"})
    loan: str = decided["decideApplication"]["loan"]["id"]
    await call(client, tally, DISBURSE, {"id": loan, "key": f"disburse-{number}"})
    return loan


async def _client(
    client: httpx.AsyncClient, tally: Tally, loans: list[str], stop: asyncio.Event, n: int
) -> None:
    """A client until ``stop``: reads, and one payment in four requests."""
    chance = random.Random(n)
    while not stop.is_set():
        loan = chance.choice(loans)
        if chance.random() < 0.25:
            done = await call(client, tally, PAY, {"id": loan, "key": str(uuid.uuid4())})
            assert done["recordPayment"]["userErrors"] == [], done
            tally.payments += 1
        else:
            query = chance.choice(READS)
            await call(client, tally, query, {"id": loan} if "$id" in query else {})
        await asyncio.sleep(chance.uniform(0.1, 0.3))


async def _is_down(proxy: HAProxy, server: str) -> bool:
    return (await proxy.states()).get(server, "").startswith("DOWN")


async def _ready_again(apis: list[Api]) -> list[float]:
    """Seconds until each process's own /readyz answered 200 (polled every 20 ms)."""
    began = time.monotonic()
    waited: list[float] = []
    async with httpx.AsyncClient(timeout=5) as client:
        for api in apis:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    answer = await client.get(f"http://127.0.0.1:{api.port}/readyz")
                    if answer.status_code == 200:
                        break
                assert time.monotonic() - began < 30, "not ready 30 s after PgBouncer came back"
                await asyncio.sleep(0.02)
            waited.append(round(time.monotonic() - began, 2))
    return waited


async def _answering(client: httpx.AsyncClient) -> float:
    """Seconds until a read through HAProxy is answered (polled every 20 ms)."""
    began = time.monotonic()
    while True:
        with contextlib.suppress(httpx.TransportError):
            answer = await client.post("/graphql", json={"query": READS[0]})
            if answer.status_code == 200:
                return time.monotonic() - began
        assert time.monotonic() - began < 30, "no answer 30 s after PgBouncer came back"
        await asyncio.sleep(0.02)


async def _watch_connections(
    url: str, stop: asyncio.Event, peak: Counter[tuple[str, str]], tally: Tally
) -> None:
    """The most connections PostgreSQL has had from the processes in each phase: through
    PgBouncer (they carry the service's application_name) and direct (LISTEN, the replica's
    checks)."""
    connection = await raw_connection(url)
    try:
        while not stop.is_set():
            pooled, direct = await connection.fetchrow(
                "SELECT count(*) FILTER (WHERE application_name = 'lending'), "
                "count(*) FILTER (WHERE application_name = '') - 1 "
                "FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend'"
            )
            for kind, found in (("pooled", pooled), ("direct", direct)):
                peak[(tally.phase, kind)] = max(peak[(tally.phase, kind)], found)
            await asyncio.sleep(0.05)
    finally:
        await connection.close()


async def _payments(url: str, loans: list[str]) -> dict[str, list[tuple[int, float]]]:
    """Each loan's payments: id, and when recorded (seconds since the epoch)."""
    connection = await raw_connection(url)
    try:
        rows = await connection.fetch(
            "SELECT loan_id, id, extract(epoch FROM recorded_at)::float8 FROM payments"
        )
    finally:
        await connection.close()
    found: dict[str, list[tuple[int, float]]] = {loan: [] for loan in loans}
    for loan_id, payment, at in rows:
        found[global_id("Loan", loan_id)].append((payment, at))
    return found
