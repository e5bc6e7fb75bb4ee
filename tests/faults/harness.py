"""The fault suite's parts: a PostgreSQL it may kill, server processes it may kill, clients.

Everything runs for real on 127.0.0.1: `lending serve` processes, an embedded PostgreSQL of the
suite's own, HTTP clients in this process. Figures are collected in ``FIGURES`` and printed at
the end of the run (tests/faults/conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from db.embedded import EmbeddedPostgres, recreate_database
from db.migrate import upgrade_to_head
from db.session import create_engine, create_sessionmaker
from lending.access import STAFF_ROLES, UNLIMITED_BUDGET, Budget, Role
from lending.services import api_keys as key_service
from tests.factories import create_product
from tests.servers import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
FIGURES: list[tuple[str, str]] = []  # (phase, figure), printed at the end of the run


def figure(phase: str, text: str) -> None:
    """Keep a figure for the summary (and print it as it comes)."""
    FIGURES.append((phase, text))
    print(f"[{phase}] {text}")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


class Database:
    """The suite's PostgreSQL, which it stops, kills and starts again."""

    def __init__(self, data_dir: Path) -> None:
        self.server = EmbeddedPostgres(data_dir)
        self.url = self.server.start()

    def stop_fast(self) -> None:
        """A fast shutdown, as a restart or failover does."""
        self.server.interrupt()

    def kill(self) -> None:
        """kill -9 of the postmaster: PostgreSQL must recover from its log on the next start."""
        pid = int((self.server.data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):  # its backends notice and exit on their own
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)

    def start(self) -> None:
        """Start again (after a stop or a kill); returns once it accepts connections."""
        for attempt in range(20):
            try:
                self.server.resume()
                return
            except Exception:  # orphaned backends may still hold the shared memory
                if attempt == 19:
                    raise
                time.sleep(0.25)

    def close(self) -> None:
        self.server.stop()


async def fresh_database(
    db: Database, name: str, budget: Budget | None = UNLIMITED_BUDGET
) -> tuple[str, dict[Role, str]]:
    """A migrated database with the demo's PERSONAL-USD product and one key per role (with
    ``budget``: by default one that never throttles; None: each role's own)."""
    url = await recreate_database(db.url, name)
    await asyncio.to_thread(upgrade_to_head, url)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    keys: dict[Role, str] = {}
    try:
        await create_product(engine)
        async with create_sessionmaker(engine)() as session, session.begin():
            for role in STAFF_ROLES:
                _, keys[role] = await key_service.create_key(
                    session, name=role.value.lower(), role=role, budget=budget
                )
    finally:
        await engine.dispose()
    return url, keys


@dataclass
class Server:
    """One `lending serve` process on 127.0.0.1, which the suite may kill and start again."""

    url: str
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = os.environ | {"DATABASE_URL": self.url, "LOG_LEVEL": "WARNING"} | self.env
        self.process = subprocess.Popen(  # noqa: ASYNC220 - a server of its own, by design
            [sys.executable, "-m", "graph.cli", "serve", "--port", str(self.port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        await wait_ready(self.port)

    def kill(self) -> None:
        """kill -9: no graceful anything."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    async def stop(self) -> str:
        """SIGTERM and wait; the server's error output."""
        if self.process is None:
            return ""
        if self.process.poll() is None:
            self.process.terminate()
        _, err = await asyncio.to_thread(self.process.communicate, None, 20)
        self.process = None
        return err.decode(errors="replace")


def client(base: str, key: str, **options: Any) -> httpx.AsyncClient:
    """An HTTP client of a server, sending ``key``."""
    limits = httpx.Limits(max_connections=options.pop("connections", 20))
    return httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {key}"},
        timeout=options.pop("timeout", 30),
        limits=limits,
        **options,
    )


async def graphql(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any] | None]:
    """(HTTP status, JSON body), or (0, None) when the server could not be reached."""
    try:
        response = await http.post("/graphql", json={"query": query, "variables": variables or {}})
    except httpx.TransportError:
        return 0, None
    try:
        body = response.json()
    except ValueError:
        body = None
    return response.status_code, body


def audit_verify(url: str) -> subprocess.CompletedProcess[str]:
    """`lending audit verify` on ``url``."""
    return subprocess.run(
        [sys.executable, "-m", "graph.cli", "audit", "verify"],
        env=os.environ | {"DATABASE_URL": url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


async def load(
    base: str, key: str, bodies: Path, concurrency: int, seconds: float
) -> dict[str, Any]:
    """``concurrency`` clients sending ``bodies`` with ``key`` for ``seconds`` from a load
    generator in a process of its own (bench.load), never waiting when told to; its figures."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.load",
        "--url",
        f"{base}/graphql",
        "--bodies",
        str(bodies),
        "--concurrency",
        str(concurrency),
        "--requests",
        "1000000",
        "--seconds",
        str(seconds),
        "--header",
        f"Authorization: Bearer {key}",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


@asynccontextmanager
async def probing_health(base: str) -> AsyncIterator[list[float]]:
    """/healthz asked every 20 ms while the block runs, by a process of its own
    (tests/faults/health_probe.py); the seconds each answer took are in the list after it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.faults.health_probe",
        f"{base}/healthz",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    took: list[float] = []
    try:
        yield took
    finally:
        out, _ = await process.communicate(b"")  # its input closed: it stops and reports
        assert process.returncode == 0, out
        took.extend(json.loads(out))
