"""Server processes for tests that need more than one: `lending serve` on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from db.embedded import recreate_database
from db.migrate import upgrade_to_head
from db.session import create_engine, create_sessionmaker
from lending.access import UNLIMITED_BUDGET, Role
from lending.services import api_keys as key_service
from tests.factories import create_product

if TYPE_CHECKING:
    from bench.pgbouncer import PgBouncer


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(port: int, tries: int = 150) -> None:
    """Wait until the server on ``port`` answers /readyz (``tries`` tenths of a second at most,
    and the time the answers take)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(tries):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.ConnectError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"server on {port} did not start")


@dataclass(frozen=True)
class Servers:
    """Server processes sharing one database, and an ADMIN key for them."""

    ports: tuple[int, ...]
    key: str
    url: str
    processes: tuple[subprocess.Popen[bytes], ...] = ()


async def prepared_database(server_url: str, name: str) -> tuple[str, str]:
    """A fresh, migrated database ``name`` with a product, and an unthrottled ADMIN key."""
    url = await recreate_database(server_url, name)
    await asyncio.to_thread(upgrade_to_head, url)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        await create_product(engine)
        async with create_sessionmaker(engine)() as session, session.begin():
            _, key = await key_service.create_key(
                session, name="ops", role=Role.ADMIN, budget=UNLIMITED_BUDGET
            )
    finally:
        await engine.dispose()
    return url, key


@asynccontextmanager
async def servers(
    server_url: str,
    name: str,
    count: int = 2,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    log: Path | None = None,
    pooler: PgBouncer | None = None,
) -> AsyncIterator[Servers]:
    """``count`` server processes on a fresh database ``name`` with a product and a key.

    ``args`` are added to each `lending serve` command line, ``env`` to its environment; their
    error output goes to the file ``log`` when given. With a ``pooler`` they reach the database
    through it (DB_POOLER=transaction), and LISTEN directly.
    """
    url, key = await prepared_database(server_url, name)
    ports = tuple(free_port() for _ in range(count))
    environment = os.environ | {"DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    if pooler is not None:
        environment |= {
            "DATABASE_URL": pooler.url(url),
            "DB_POOLER": "transaction",
            "DATABASE_LISTEN_URL": url,
        }
    environment |= env or {}
    errors = log.open("ab") if log is not None else subprocess.DEVNULL
    processes = [
        subprocess.Popen(  # noqa: ASYNC220 - each server in its own process, by design
            [sys.executable, "-m", "graph.cli", "serve", "--port", str(port), *args],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        for port in ports
    ]
    try:
        await asyncio.gather(*(wait_ready(port) for port in ports))
        yield Servers(ports, key, url, tuple(processes))
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            await asyncio.to_thread(process.wait, 10)
        if log is not None:
            errors.close()  # type: ignore[union-attr]
