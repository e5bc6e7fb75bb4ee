"""Test session plumbing: a real PostgreSQL, started by the tests themselves."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db.embedded import EmbeddedPostgres, recreate_database, with_database
from db.migrate import upgrade_to_head
from db.session import create_engine, raw_connection

# The session's app and keys are defined once, here: a session fixture imported by two
# directories' conftests is made once per directory, and the second set of keys replaced the
# first, so tests of one directory run after the other's were refused (401).
from tests.dbfixtures import (
    admin_key,
    api_keys,
    app,
    client,
    per_field_app,
    per_field_client,
    sql,
)

ROOT = Path(__file__).resolve().parent.parent
# One database per test process (`make test` runs two): pytest-xdist names them gw0, gw1, ...
TEST_DATABASE = f"lending_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """TEST_DATABASE_URL's server, or an embedded one in .pgdata-test (stopped afterwards)."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    server = EmbeddedPostgres(ROOT / ".pgdata-test")
    # One process at a time starts it and, the first time, gives it room for both processes'
    # servers, pools and poolers (100 connections ran out: "no free connection slots").
    with open(ROOT / ".pgdata-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        url = server.start()
        if asyncio.run(_max_connections(url)) < MAX_CONNECTIONS:
            server.interrupt()
            server.resume()
    yield url
    server.stop()


MAX_CONNECTIONS = 300


async def _max_connections(url: str) -> int:
    """The server's max_connections; raised to MAX_CONNECTIONS (from its next start) if lower."""
    connection = await raw_connection(url)
    try:
        found = int(await connection.fetchval("SHOW max_connections"))
        if found < MAX_CONNECTIONS:
            await connection.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
        return found
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> str:
    """A fresh, migrated test database (dropped and recreated for every test session)."""
    asyncio.run(recreate_database(server_url, TEST_DATABASE))
    url = with_database(server_url, TEST_DATABASE)
    upgrade_to_head(url)
    return url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The engine the tests inspect the database with."""
    engine = create_engine(database_url, pool_size=5, max_overflow=20)
    yield engine
    await engine.dispose()


__all__ = [
    "admin_key",
    "api_keys",
    "app",
    "client",
    "per_field_app",
    "per_field_client",
    "sql",
]
