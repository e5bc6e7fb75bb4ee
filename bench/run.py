"""The benchmark harness: our service, the ceiling and PostGraphile, same database, same run.

    python -m bench.run [--scale 1] [--small-scale 0.1] [--seconds 8] [--no-postgraphile]

Starts the embedded PostgreSQL in ``.pgdata-bench``, fills one database per scale with
``bench.data`` (kept between runs), installs PostGraphile (``bench/postgraphile/install.sh``),
starts every server on 127.0.0.1 and drives each workload from a separate load process
(``bench.load``, ``bench.writes``) at concurrency 1 and 16, bounded in requests and seconds.
Then it profiles R2 in-process and writes the measured part of ``bench/RESULTS.md`` (between
its markers; the prose around them is kept). Raw figures go to ``bench/.work/results.json``.
Nothing here asserts a timing: the numbers are for reading.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import queries
from bench.distributions import REFERENCE_DATE
from bench.fill import database_name
from bench.fill import run as fill
from bench.measure import count_statements, cpu_seconds, peak_rss_mb, postmaster_pid
from bench.pgbouncer import PgBouncer
from bench.profile import READ_PROFILES, STEPS
from bench.queries import READS
from bench.report import pooler as pooler_table
from bench.report import scales as scales_table
from bench.report import write_ceiling, write_results
from db.embedded import EmbeddedPostgres, admin_connection, with_database
from db.session import raw_connection
from graph.server.demo_tokens import DemoSigner
from lending.access import UNLIMITED_BUDGET

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / ".work"
RESULTS = ROOT / "bench" / "RESULTS.md"
KEY = "lnd_bench_admin"
STATEMENT_COUNT_SECONDS = 600.0  # a bound, never reached: the count's run ends with its work
PY = sys.executable
CONCURRENCY = (1, 16)


@dataclass(frozen=True)
class Budget:
    """How long each measurement may run: whichever bound comes first."""

    seconds: float
    requests: int
    warmup_seconds: float


# ---- servers -----------------------------------------------------------------------------


@dataclass
class Server:
    """A running server under test and how it is asked each workload."""

    name: str
    base: str
    process: subprocess.Popen[bytes]
    kind: str  # "ours", "ceiling-sql", "ceiling-py", "ceiling-w1", "postgraphile"
    headers: list[str] = field(default_factory=list)
    pooler: PgBouncer | None = None  # between the server and PostgreSQL, its CPU measured too

    def endpoint(self, workload: str) -> str:
        if self.kind.startswith("ceiling"):
            path = "r1" if workload == "R1" else "r2"  # R3 is R2 from a cursor
            return f"{self.base}/{self.kind.removeprefix('ceiling-')}/{path}"
        return f"{self.base}/graphql"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def started(
    name: str, cmd: list[str], env: dict[str, str], port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process for the block; its output goes to bench/.work/<name>.log."""
    with (WORK / f"{name}.log").open("wb") as log:
        process = subprocess.Popen(
            cmd, env=os.environ | env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True
        )
        try:
            wait_for(f"http://127.0.0.1:{port}/", process)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def ours(
    url: str,
    workers: int,
    compiled: bool = True,
    observed: bool | None = None,
    pooler: PgBouncer | None = None,
) -> tuple[str, list[str], dict[str, str], int]:
    """Our server: compiled reads (``ours-1w``) or every field resolved (``ours-off-1w``).

    ``observed`` None: the defaults (metrics on, no request log line); False: nothing recorded
    (``ours-quiet``); True: metrics, one JSON log line per request, tracing unset
    (``ours-observed``), as in production. With a ``pooler``: through it, in
    ``DB_POOLER=transaction`` mode (``ours-pooled``).
    """
    port = free_port()
    cmd = [PY, "-m", "graph.cli", "serve", "--port", str(port), "--workers", str(workers)]
    env = {
        "DATABASE_URL": url,
        "ACCESS_LOG": "false",
        "LOG_LEVEL": "WARNING",
        "COMPILED_READS": "on" if compiled else "off",
    }
    name = f"ours{'' if compiled else '-off'}-{workers}w"
    if observed is not None:
        env |= {"METRICS": "on" if observed else "off", "OTEL_EXPORTER_OTLP_ENDPOINT": ""}
        if observed:
            env |= {"LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
        name = "ours-observed" if observed else "ours-quiet"
    if pooler is not None:
        env |= {
            "DATABASE_URL": pooler.url(url),
            "DB_POOLER": "transaction",
            "DATABASE_LISTEN_URL": url,
        }
        name = "ours-pooled"
    return name, cmd, env, port


def ceiling(
    url: str, module: str = "bench.ceiling", name: str = "ceiling"
) -> tuple[str, list[str], dict[str, str], int]:
    """The read ceiling (bench.ceiling), or the write ceiling (bench.write_ceiling)."""
    port = free_port()
    cmd = [PY, "-m", module, "--port", str(port), "--database-url", url]
    return name, cmd, {}, port


def postgraphile(url: str, node: str) -> tuple[str, list[str], dict[str, str], int]:
    port = free_port()
    cmd = [node, str(ROOT / "bench" / "postgraphile" / "server.mjs")]
    return "postgraphile", cmd, {"DATABASE_URL": url, "PORT": str(port)}, port


def install_postgraphile() -> tuple[str | None, str]:
    """The Node 22 binary PostGraphile runs on, or None and why not."""
    script = ROOT / "bench" / "postgraphile" / "install.sh"
    done = subprocess.run(
        ["bash", str(script), "--print-node"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return None, (done.stderr.strip().splitlines() or ["install.sh failed"])[-1]
    return done.stdout.strip().splitlines()[-1], ""


# ---- workloads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Positions:
    """Rows the read workloads ask for, picked once per database."""

    r1_ids: list[int]
    r3_after: tuple[datetime, int]
    approved: int


async def pick_positions(url: str, seed: int = 11) -> Positions:
    """Applications with loans for R1, and the keyset position 80 % into R2's ordering."""
    connection = await raw_connection(url)
    try:
        ids = [
            row["id"]
            for row in await connection.fetch(
                "SELECT a.id FROM loan_applications a JOIN loans l ON l.application_id = a.id "
                "ORDER BY a.id"
            )
        ]
        approved = await connection.fetchval(
            "SELECT count(*) FROM loan_applications WHERE status = 'APPROVED'"
        )
        row = await connection.fetchrow(
            "SELECT submitted_at, id FROM loan_applications WHERE status = 'APPROVED' "
            "ORDER BY submitted_at DESC, id DESC OFFSET $1 LIMIT 1",
            int(approved * 0.8),
        )
    finally:
        await connection.close()
    sample = random.Random(seed).sample(ids, min(500, len(ids)))
    return Positions(sample, (row["submitted_at"], row["id"]), approved)


def request_bodies(
    kind: str, workload: str, positions: Positions, pg_r3_cursor: str | None
) -> list[dict[str, Any]]:
    """The request bodies of a workload for a kind of server (R1 cycles through many ids)."""
    if workload == "OVERDUE":
        return [{"query": queries.OUR_OVERDUE, "variables": {"asOf": REFERENCE_DATE.isoformat()}}]
    if workload == "COUNT":
        return [{"query": queries.OUR_COUNT}]
    if workload == "COUNT1000":
        return [{"query": queries.OUR_COUNT_BOUNDED}]
    if workload == "PORTFOLIO":
        day = REFERENCE_DATE.isoformat()
        return [{"query": queries.OUR_PORTFOLIO, "variables": {"asOf": day}}]
    if workload == "DECISIONS":
        window = {"from": (REFERENCE_DATE - timedelta(days=3 * 365)).isoformat()}
        day = REFERENCE_DATE.isoformat()
        variables = window | {"to": day, "asOf": day}
        return [{"query": queries.OUR_DECISION_STATS, "variables": variables}]
    after = positions.r3_after if workload == "R3" else None
    if workload == "R1":
        if kind == "ours":
            return [
                {"query": queries.OUR_R1, "variables": {"id": queries.our_id(i)}}
                for i in positions.r1_ids
            ]
        if kind == "postgraphile":
            return [{"query": queries.PG_R1, "variables": {"id": i}} for i in positions.r1_ids]
        return [{"id": i} for i in positions.r1_ids]
    if kind == "ours":
        cursor = queries.our_cursor(*after) if after else None
        return [{"query": queries.OUR_R2, "variables": {"after": cursor}}]
    if kind == "postgraphile":
        return [{"query": queries.PG_R2, "variables": {"after": pg_r3_cursor if after else None}}]
    return [{"after": [after[0].astimezone(UTC).isoformat(), after[1]] if after else None}]


# ---- measuring ---------------------------------------------------------------------------


@dataclass
class Result:
    """One workload on one server at one concurrency."""

    scale: float
    workload: str
    server: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    server_cpu_ms: float
    pg_cpu_ms: float
    statements: float | None
    rss_mb: float
    note: str = ""
    pooler_cpu_ms: float | None = None  # PgBouncer's, when the server reaches PostgreSQL by it


def run_load(
    endpoint: str, bodies: Path, concurrency: int, requests: int, seconds: float, headers: list[str]
) -> dict[str, Any]:
    """Drive ``endpoint`` from a separate process; its JSON summary."""
    cmd = [
        PY, "-m", "bench.load", "--url", endpoint, "--bodies", str(bodies),
        "--concurrency", str(concurrency), "--requests", str(requests), "--seconds", str(seconds),
    ]  # fmt: skip
    for header in headers:
        cmd += ["--header", header]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class Postgres:
    """The embedded server: its URL, CPU time and statement log."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.embedded = EmbeddedPostgres(data_dir)
        self.url = ""

    def start(self) -> str:
        self.url = self.embedded.start()
        return self.url

    def stop(self) -> None:
        self.embedded.stop()

    @property
    def log(self) -> Path:
        pgserver_log = self.data_dir / "log"
        return pgserver_log if pgserver_log.exists() else self.data_dir / "server.log"

    def cpu_seconds(self) -> float:
        return cpu_seconds([postmaster_pid(self.data_dir)])

    async def _set(self, setting: str, value: str) -> None:
        connection = await admin_connection(self.url)
        try:
            await connection.execute(f"ALTER SYSTEM SET {setting} = '{value}'")
            await connection.execute("SELECT pg_reload_conf()")
        finally:
            await connection.close()
        await asyncio.sleep(0.1)  # backends pick the reload up before their next statement

    def statements_per_request(self, run: Callable[[], dict[str, Any]]) -> float | None:
        """Statements PostgreSQL logged while ``run`` ran, per request it made."""
        asyncio.run(self._set("log_statement", "all"))
        try:
            offset = self.log.stat().st_size
            load = run()
            time.sleep(0.3)
            counted = count_statements(self.log, offset)
        finally:
            asyncio.run(self._set("log_statement", "none"))
        return round(counted / load["requests"], 2) if load["requests"] else None


def under_load(
    pg: Postgres,
    server: Server,
    scale: float,
    workload: str,
    concurrency: int,
    statements: float | None,
    load: Callable[[], dict[str, Any]],
    note: str = "",
) -> Result:
    """Run ``load`` once, with the CPU the server and PostgreSQL spend on it; print the line."""
    server_before, pg_before = cpu_seconds([server.process.pid]), pg.cpu_seconds()
    pooler_before = server.pooler.cpu_seconds() if server.pooler else 0.0
    figures = load()
    server_cpu = cpu_seconds([server.process.pid]) - server_before
    pg_cpu = pg.cpu_seconds() - pg_before
    n = max(figures["requests"], 1)
    pooler_cpu = server.pooler.cpu_seconds() - pooler_before if server.pooler else None
    result = Result(
        scale=scale,
        workload=workload,
        server=server.name,
        concurrency=concurrency,
        rps=figures["rps"],
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        requests=figures["requests"],
        errors=figures["errors"],
        server_cpu_ms=round(server_cpu / n * 1000, 2),
        pg_cpu_ms=round(pg_cpu / n * 1000, 2),
        statements=statements,
        rss_mb=round(peak_rss_mb([server.process.pid]), 1),
        note=(note + figures.get("first_error", ""))[:160],
        pooler_cpu_ms=None if pooler_cpu is None else round(pooler_cpu / n * 1000, 2),
    )
    print(
        f"  {scale:g} {workload} c={concurrency:<2} {server.name:<13} {result.rps:>8.1f} rps  "
        f"p50 {result.p50_ms:>7.2f} ms  p99 {result.p99_ms:>7.2f} ms  "
        f"stmts {statements if statements is not None else '-'}  errors {result.errors}",
        flush=True,
    )
    return result


def measure(
    pg: Postgres,
    server: Server,
    scale: float,
    workload: str,
    concurrency: int,
    bodies: list[dict[str, Any]],
    budget: Budget,
    count: bool,
) -> Result:
    """Warm up, optionally count statements, then measure a read workload under load."""
    body_file = WORK / f"bodies-{server.kind}-{workload}.jsonl"
    body_file.write_text("".join(json.dumps(b, default=str) + "\n" for b in bodies))
    endpoint = server.endpoint(workload)

    def drive(requests: int, seconds: float, clients: int) -> dict[str, Any]:
        return run_load(endpoint, body_file, clients, requests, seconds, server.headers)

    if budget.warmup_seconds > 0:  # 0: no warm-up (the test suite's tiny run)
        drive(10_000, budget.warmup_seconds, concurrency)
    statements = None
    if count:
        statements = pg.statements_per_request(
            lambda: drive(min(20, budget.requests), budget.seconds, 1)
        )
    return under_load(
        pg,
        server,
        scale,
        workload,
        concurrency,
        statements,
        lambda: drive(budget.requests, budget.seconds, concurrency),
    )


def measure_writes(
    pg: Postgres, server: Server, concurrency: int, budget: Budget, scale: float
) -> Result:
    """W1 (apply → decide → disburse → pay) from concurrent agents in a separate process."""

    def drive(sequences: int, seconds: float, agents: int) -> dict[str, Any]:
        cmd = [
            PY, "-m", "bench.writes", "--url", server.base, "--key", KEY,
            "--concurrency", str(agents), "--sequences", str(sequences),
            "--seconds", str(seconds),
        ]  # fmt: skip
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    if budget.warmup_seconds > 0:  # 0: no warm-up (the test suite's tiny run)
        drive(10_000, budget.warmup_seconds, concurrency)
    # Statements per mutation, counted over exactly 5 sequences (20 mutations) of a server that
    # has run one already: connections opened and caches filled before the count, and no time
    # limit, so that a slow machine counts the same statements over the same mutations.
    drive(1, STATEMENT_COUNT_SECONDS, 1)
    statements = pg.statements_per_request(lambda: drive(5, STATEMENT_COUNT_SECONDS, 1))
    figures: dict[str, Any] = {}

    def load() -> dict[str, Any]:
        figures.update(drive(max(budget.requests // 4, 1), budget.seconds, concurrency))
        return figures

    result = under_load(pg, server, scale, "W1", concurrency, statements, load)
    result.note = f"{figures['sequences_per_s']} sequences/s {result.note}".strip()
    return result


async def copy_database(server_url: str, source: str, target: str) -> str:
    """A fresh copy of ``source`` (for the writes, so reads see the same rows every run)."""
    connection = await admin_connection(server_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
    finally:
        await connection.close()
    return with_database(server_url, target)


# ---- the run -----------------------------------------------------------------------------


def run_reads(
    pg: Postgres,
    url: str,
    scale: float,
    budget: Budget,
    node: str | None,
    concurrencies: tuple[int, ...],
    with_ceiling: bool,
) -> list[Result]:
    """R1–R3 on our server (compiled and not), the ceiling's two paths and PostGraphile."""
    positions = asyncio.run(pick_positions(url))
    results: list[Result] = []
    specs = [ours(url, 1), ours(url, 1, compiled=False)]
    if with_ceiling:
        specs.append(ceiling(url))
    if node:
        specs.append(postgraphile(url, node))
    for name, cmd, env, port in specs:
        base = f"http://127.0.0.1:{port}"
        with started(f"{name}-{scale:g}", cmd, env, port) as process:
            if name == "ceiling":
                servers = [
                    Server("ceiling-sql", base, process, "ceiling-sql"),
                    Server("ceiling-py", base, process, "ceiling-py"),
                ]
            elif name == "postgraphile":
                servers = [Server(name, base, process, "postgraphile")]
            else:
                servers = [Server(name, base, process, "ours", [f"Authorization: Bearer {KEY}"])]
            pg_cursor = None
            if name == "postgraphile":
                pg_cursor = asyncio.run(_pg_cursor(base, positions))
            for server in servers:
                for workload in READS:
                    bodies = request_bodies(server.kind, workload, positions, pg_cursor)
                    for i, concurrency in enumerate(concurrencies):
                        results.append(
                            measure(
                                pg, server, scale, workload, concurrency, bodies, budget, i == 0
                            )
                        )
    return results


async def _pg_cursor(base: str, positions: Positions) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        return await queries.pg_cursor_at(client, f"{base}/graphql", *positions.r3_after)


def run_two_workers(
    pg: Postgres, url: str, scale: float, budget: Budget, concurrency: int
) -> list[Result]:
    """R1–R3 on our server with two worker processes."""
    positions = asyncio.run(pick_positions(url))
    name, cmd, env, port = ours(url, 2)
    results = []
    with started(f"{name}-{scale:g}", cmd, env, port) as process:
        server = Server(
            name, f"http://127.0.0.1:{port}", process, "ours", [f"Authorization: Bearer {KEY}"]
        )
        for workload in READS:
            bodies = request_bodies("ours", workload, positions, None)
            results.append(measure(pg, server, scale, workload, concurrency, bodies, budget, False))
    return results


def run_observability(
    pg: Postgres,
    url: str,
    scale: float,
    budget: Budget,
    concurrencies: tuple[int, ...],
    rounds: int,
) -> list[Result]:
    """R2 with nothing recorded and with metrics and JSON request logs, both servers up for
    the whole run and measured in alternating rounds, so that drift hits both alike."""
    positions = asyncio.run(pick_positions(url))
    bodies = request_bodies("ours", "R2", positions, None)
    results = []
    with contextlib.ExitStack() as stack:
        servers = []
        for observed in (False, True):
            name, cmd, env, port = ours(url, 1, observed=observed)
            process = stack.enter_context(started(f"{name}-{scale:g}", cmd, env, port))
            auth = [f"Authorization: Bearer {KEY}"]
            servers.append(Server(name, f"http://127.0.0.1:{port}", process, "ours", auth))
        for round_ in range(rounds):
            for concurrency in concurrencies:
                for server in servers if round_ % 2 == 0 else servers[::-1]:
                    result = measure(pg, server, scale, "R2", concurrency, bodies, budget, False)
                    result.note = f"round {round_ + 1}"
                    results.append(result)
    return results


async def pick_borrower(url: str) -> tuple[str, list[int]]:
    """The applicant with the most approved applications that have loans: their email, and
    those applications (R1 cycles through them)."""
    connection = await raw_connection(url)
    try:
        row = await connection.fetchrow(
            "SELECT p.email, array_agg(a.id ORDER BY a.id) AS ids FROM applicants p "
            "JOIN loan_applications a ON a.applicant_id = p.id "
            "JOIN loans l ON l.application_id = a.id WHERE a.status = 'APPROVED' "
            "GROUP BY p.id ORDER BY count(*) DESC, p.id LIMIT 1"
        )
    finally:
        await connection.close()
    return row["email"], list(row["ids"])


def run_borrowers(
    pg: Postgres, url: str, scale: float, budget: Budget, concurrencies: tuple[int, ...]
) -> list[Result]:
    """R1 and R2 as a borrower's token and as an API key, on one server, over the same rows:
    the key names the borrower's applications (R2 by their email), the token is scoped to them
    by the server. What the token and the scoping cost is the difference."""
    email, ids = asyncio.run(pick_borrower(url))
    signer = DemoSigner.ensure(WORK / "tokens")
    token = signer.token(email, "BORROWER", "lending_role", 24 * 3600)
    _, cmd, env, port = ours(url, 1)
    # the borrower's budget as unlimited as the bench key's: throughput is what is measured
    env = env | signer.environment() | {"BORROWER_BUDGET": str(UNLIMITED_BUDGET)}
    results = []
    r1 = [{"query": queries.OUR_R1, "variables": {"id": queries.our_id(i)}} for i in ids]
    with started(f"ours-tokens-{scale:g}", cmd, env, port) as process:
        base = f"http://127.0.0.1:{port}"
        servers = {
            "ours-key": (
                Server("ours-key", base, process, "ours", [f"Authorization: Bearer {KEY}"]),
                email,
            ),
            "ours-borrower": (
                Server("ours-borrower", base, process, "ours", [f"Authorization: Bearer {token}"]),
                None,
            ),
        }
        for workload in ("R1", "R2"):
            for i, concurrency in enumerate(concurrencies):
                for server, named in servers.values():
                    bodies = (
                        r1
                        if workload == "R1"
                        else [{"query": queries.OUR_R2_OWN, "variables": {"email": named}}]
                    )
                    result = measure(
                        pg, server, scale, workload, concurrency, bodies, budget, i == 0
                    )
                    result.note = f"{len(ids)} applications"
                    results.append(result)
    return results


def run_writes(
    pg: Postgres, url: str, scale: float, budget: Budget, concurrencies: tuple[int, ...]
) -> list[Result]:
    """W1 on our server with one and two workers, and on the write ceiling (bench.write_ceiling,
    ``ceiling-w1``) at our one worker's concurrencies, on a copy of the database."""
    results = []
    for (name, cmd, env, port), kind, measured in (
        (ours(url, 1), "ours", concurrencies),
        (ours(url, 2), "ours", concurrencies[-1:]),
        (ceiling(url, "bench.write_ceiling", "ceiling-w1"), "ceiling-w1", concurrencies),
    ):
        with started(f"{name}-w1", cmd, env, port) as process:
            server = Server(name, f"http://127.0.0.1:{port}", process, kind)
            for concurrency in measured:
                results.append(measure_writes(pg, server, concurrency, budget, scale))
    return results


POOLER_SIZE = 20  # PgBouncer's server connections: the direct server's pool of 10 + 10


def run_pooler(
    pg: Postgres,
    url: str,
    writes_url: str,
    scale: float,
    budget: Budget,
    concurrencies: tuple[int, ...],
) -> list[Result]:
    """R1, R2 (on ``url``) and W1 (on ``writes_url``) on one worker reaching PostgreSQL directly
    (``ours-direct``) and through PgBouncer in transaction mode (``ours-pooled``), one after
    the other in the same run, with PgBouncer's own CPU."""
    bouncer = PgBouncer(pg.url, free_port(), pool_size=POOLER_SIZE)
    asyncio.run(bouncer.start())
    positions = asyncio.run(pick_positions(url))
    results: list[Result] = []
    try:
        for pooler in (None, bouncer):
            for target, workloads in ((url, ("R1", "R2")), (writes_url, ("W1",))):
                name, cmd, env, port = ours(target, 1, pooler=pooler)
                name = name if pooler else "ours-direct"
                with started(f"{name}-{workloads[0]}", cmd, env, port) as process:
                    auth = [f"Authorization: Bearer {KEY}"]
                    base = f"http://127.0.0.1:{port}"
                    server = Server(name, base, process, "ours", auth, pooler)
                    for workload in workloads:
                        bodies = request_bodies("ours", workload, positions, None)
                        for i, c in enumerate(concurrencies):
                            results.append(
                                measure_writes(pg, server, c, budget, scale)
                                if workload == "W1"
                                else measure(pg, server, scale, workload, c, bodies, budget, i == 0)
                            )
    finally:
        bouncer.remove()
    return results


def run_pooler_only(
    pg: Postgres, url: str, scale: float, budget: Budget, concurrencies: tuple[int, ...]
) -> None:
    """The pooler phase alone (``--only pooler``): its table printed, its results in
    bench/.work/results-pooler.json."""
    copy = asyncio.run(copy_database(pg.url, database_name(scale), "lending_bench_writes"))
    results = [asdict(r) for r in run_pooler(pg, url, copy, scale, budget, concurrencies)]
    (WORK / "results-pooler.json").write_text(json.dumps(results, indent=2, default=str))
    print("\n".join(pooler_table(results, scale)), flush=True)


# What is measured at every scale of --scales: the keyset reads, a page of the collections
# screen, a count over a large filter (whole, and bounded), the portfolio, how decisions
# turned out, and the writes.
SCALE_READS = ("R1", "R2", "R3", "OVERDUE", "COUNT", "COUNT1000", "PORTFOLIO", "DECISIONS")


def run_scales(
    pg: Postgres, server_url: str, scales: tuple[float, ...], budget: Budget
) -> list[Result]:
    """SCALE_READS and W1 (on a copy) at concurrency 1 on one worker (``ours-scale``), at each
    scale in turn, each book generated once and kept."""
    results: list[Result] = []
    for scale in scales:
        url = with_database(server_url, database_name(scale))
        print(f"data: scale {scale:g} ...", flush=True)
        asyncio.run(fill(url, scale))
        positions = asyncio.run(pick_positions(url))
        copy = asyncio.run(copy_database(server_url, database_name(scale), "lending_scale_writes"))
        for target, workloads in ((url, SCALE_READS), (copy, ("W1",))):
            _, cmd, env, port = ours(target, 1)
            name = "ours-scale"
            with started(f"{name}-{scale:g}-{workloads[0]}", cmd, env, port) as process:
                auth = [f"Authorization: Bearer {KEY}"]
                server = Server(name, f"http://127.0.0.1:{port}", process, "ours", auth)
                for workload in workloads:
                    if workload == "W1":
                        results.append(measure_writes(pg, server, 1, budget, scale))
                        continue
                    bodies = request_bodies("ours", workload, positions, None)
                    results.append(measure(pg, server, scale, workload, 1, bodies, budget, True))
    return results


def run_fanout(url: str, subscribers: int, events: int) -> dict[str, Any]:
    """Event fan-out (bench.fanout): ``subscribers`` WebSocket subscribers of a server with two
    workers, each selecting the application of every event; from a mutation's answer to the
    last subscriber's event."""
    name, cmd, env, port = ours(url, 2)
    with started(f"{name}-fanout", cmd, env, port):
        command = [
            PY, "-m", "bench.fanout", "--url", f"http://127.0.0.1:{port}", "--key", KEY,
            "--subscribers", str(subscribers), "--events", str(events),
        ]  # fmt: skip
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, check=True, timeout=600
        )
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"  fan-out to {found['subscribers']} subscribers, {found['events']} events: last "
        f"subscriber p50 {found['last_p50_ms']} ms, p99 {found['last_p99_ms']} ms, "
        f"lost {found['lost']}",
        flush=True,
    )
    return found


# What is profiled: (workload, compiled reads on), each in a process of its own.
def run_profiles(url: str, requests: int, writes_url: str) -> list[dict[str, Any]]:
    """Profiles (bench.profile, in one process) of compiled R1 and R2, of R2 resolved field by
    field, and of each of W1's mutations (on ``writes_url``, the copy the writes ran on)."""
    cmd = [
        PY, "-m", "bench.profile", "--database-url", url, "--writes-database-url", writes_url,
        "--requests", str(requests), "--workload", "ALL",
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    lines = done.stdout.strip().splitlines()
    return [json.loads(line) for line in lines[-(len(READ_PROFILES) + len(STEPS)) :]]


def main(argv: list[str] | None = None) -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="main scale (1 = 10,000 loans)")
    parser.add_argument("--small-scale", type=float, default=0.1, help="the second scale (0: none)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per measurement")
    parser.add_argument("--requests", type=int, default=4000, help="per measurement, at most")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up")
    parser.add_argument("--profile-requests", type=int, default=100)
    parser.add_argument("--no-postgraphile", action="store_true")
    parser.add_argument(
        "--observed-rounds",
        type=int,
        default=3,
        help="alternating rounds of R2 with and without metrics and logs (median reported)",
    )
    parser.add_argument("--subscribers", type=int, default=1000, help="for the fan-out")
    parser.add_argument("--fanout-events", type=int, default=100, help="0: no fan-out phase")
    parser.add_argument(
        "--scales",
        type=lambda text: tuple(float(x) for x in text.split(",")),
        default=(),
        help="also measure the cost of each request at these scales (e.g. 0.1,1,10)",
    )
    parser.add_argument(
        "--no-pooler",
        dest="pooler",
        action="store_false",
        help="skip R1, R2 and W1 through PgBouncer in transaction mode",
    )
    parser.add_argument(
        "--only",
        choices=["pooler", "scales", "writes"],
        help="run one phase alone and print its table; bench/RESULTS.md is left as it is",
    )
    parser.add_argument("--pgdata", type=Path, default=ROOT / ".pgdata-bench")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--concurrency", type=int, nargs="+", default=list(CONCURRENCY))
    args = parser.parse_args(argv)
    budget = Budget(args.seconds, args.requests, args.warmup)
    concurrencies = tuple(args.concurrency)
    WORK.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()

    node, missing = (None, "turned off (--no-postgraphile)")
    if not args.no_postgraphile and not args.only:
        print("installing PostGraphile (once) ...", flush=True)
        node, missing = install_postgraphile()
        if node is None:
            print(f"PostGraphile unavailable: {missing}", flush=True)

    pg = Postgres(args.pgdata)
    server_url = pg.start()
    try:
        urls: dict[float, str] = {}
        generation: dict[float, dict[str, Any]] = {}
        scales = (args.scale, args.small_scale) if args.small_scale else (args.scale,)
        for scale in scales:
            url = with_database(server_url, database_name(scale))
            print(f"data: scale {scale:g} ...", flush=True)
            report = asyncio.run(fill(url, scale))
            urls[scale] = url
            generation[scale] = {
                "seconds": round(report.seconds, 1),
                "reused": report.reused,
                "loans": report.counts.get("loans", 0),
                "installments": report.counts.get("installments", 0),
                "applications": report.counts.get("loan_applications", 0),
            }

        results: list[Result] = []
        if args.only == "pooler":
            run_pooler_only(pg, urls[args.scale], args.scale, budget, concurrencies)
            return
        if args.only == "writes":
            copy = asyncio.run(
                copy_database(server_url, database_name(args.scale), "lending_bench_writes")
            )
            found = [asdict(r) for r in run_writes(pg, copy, args.scale, budget, concurrencies)]
            (WORK / "results-writes.json").write_text(json.dumps(found, indent=2, default=str))
            print("\n".join(write_ceiling(found, args.scale)), flush=True)
            return
        if args.only == "scales":
            found = [asdict(r) for r in run_scales(pg, server_url, args.scales, budget)]
            (WORK / "results-scales.json").write_text(json.dumps(found, indent=2, default=str))
            print("\n".join(scales_table(found)), flush=True)
            return
        print(f"reads, scale {args.scale:g}:", flush=True)
        results += run_reads(pg, urls[args.scale], args.scale, budget, node, concurrencies, True)
        if args.small_scale:
            print(f"reads, scale {args.small_scale:g}:", flush=True)
            results += run_reads(
                pg, urls[args.small_scale], args.small_scale, budget, node, (1,), False
            )
        print("reads, two workers:", flush=True)
        results += run_two_workers(pg, urls[args.scale], args.scale, budget, concurrencies[-1])
        print("reads, metrics and logs on and off:", flush=True)
        results += run_observability(
            pg, urls[args.scale], args.scale, budget, concurrencies, args.observed_rounds
        )
        print("reads, a borrower's token and an API key:", flush=True)
        results += run_borrowers(pg, urls[args.scale], args.scale, budget, concurrencies)
        print("writes (on a copy of the database):", flush=True)
        copy = asyncio.run(
            copy_database(server_url, database_name(args.scale), "lending_bench_writes")
        )
        results += run_writes(pg, copy, args.scale, budget, concurrencies)
        if args.pooler:
            print("through PgBouncer in transaction mode, and direct:", flush=True)
            results += run_pooler(pg, urls[args.scale], copy, args.scale, budget, concurrencies)
        if args.scales:
            print(f"cost as the book grows, scales {args.scales}:", flush=True)
            results += run_scales(pg, server_url, args.scales, budget)
        fanout = None
        if args.fanout_events:
            print("event fan-out (on the copy):", flush=True)
            fanout = run_fanout(copy, args.subscribers, args.fanout_events)
        print("profiles ...", flush=True)
        profiles = run_profiles(urls[args.scale], args.profile_requests, copy)
    finally:
        pg.stop()

    run = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python -m bench.run", *(argv or sys.argv[1:])]),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "system": f"{platform.system()} {platform.machine()}",
        },
        "budget": asdict(budget),
        "scales": {"main": args.scale, "small": args.small_scale},
        "generation": {f"{k:g}": v for k, v in generation.items()},
        "postgraphile": "measured" if node else f"not measured: {missing}",
        "results": [asdict(r) for r in results],
        "profiles": profiles,
        "fanout": fanout,
        "minutes": round((time.perf_counter() - began) / 60, 1),
    }
    (WORK / "results.json").write_text(json.dumps(run, indent=2, default=str))
    write_results(args.output, run)
    print(f"wrote {args.output} in {run['minutes']} minutes", flush=True)


if __name__ == "__main__":
    main()
