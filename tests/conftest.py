"""Test session plumbing: a real PostgreSQL, started by the tests themselves."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db.embedded import EmbeddedPostgres, recreate_database, with_database
from db.migrate import upgrade_to_head
from db.session import create_engine

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
    url = server.start()
    yield url
    server.stop()


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
