"""Fixtures for tests that touch the database: the app, an HTTP client, clean tables."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.listener import EventListener
from db.models import Base
from db.session import RequestSession, create_sessionmaker
from graph.context import Context
from graph.server.app import create_app
from graph.server.settings import Settings
from lending.access import STAFF_ROLES, UNLIMITED_BUDGET, Principal, Role
from lending.services import api_keys as key_service

# API keys live for the whole session; everything else is emptied after each test.
TABLES = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "api_keys")


@pytest.fixture(autouse=True)
async def clean_tables(engine: AsyncEngine) -> AsyncIterator[None]:
    """Every test starts from empty tables (tests commit for real, so rollback won't do)."""
    yield
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def app(database_url: str) -> FastAPI:
    """The service, exactly as served, bound to the test database."""
    return create_app(Settings(database_url=database_url), database_url)


@pytest.fixture(scope="session")
async def api_keys(engine: AsyncEngine) -> dict[Role, str]:
    """One active API key per role, named after the role (lowercase), whose budgets never
    throttle them (the budgets' own tests make keys of their own)."""
    keys: dict[Role, str] = {}
    async with create_sessionmaker(engine)() as session, session.begin():
        await session.execute(text("DELETE FROM api_keys"))
        for role in STAFF_ROLES:
            _, keys[role] = await key_service.create_key(
                session, name=role.value.lower(), role=role, budget=UNLIMITED_BUDGET
            )
    return keys


@pytest.fixture
def admin_key(api_keys: dict[Role, str]) -> str:
    """The ADMIN key."""
    return api_keys[Role.ADMIN]


def admin_context(
    app: FastAPI, events: EventListener, request_id: str, role: Role = Role.ADMIN
) -> Context:
    """A GraphQL context for a WebSocket of an ADMIN (or ``role``), as the app builds one,
    listening to ``events`` (for running subscriptions on the app's schema directly)."""
    compiled = app.state.compiled
    return Context(
        request_id=request_id,
        sessionmaker=app.state.sessionmaker,
        db=RequestSession(app.state.sessionmaker),
        authenticate=app.state.principals.authenticate,
        events=events,
        principal=Principal(role.value.lower(), role),
        compiled=compiled if compiled.enabled else None,
        over_websocket=True,
    )


def http_client(app: FastAPI, key: str | None) -> httpx.AsyncClient:
    """An in-process HTTP client sending ``key`` as its bearer token (none when None)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


@pytest.fixture
async def client(app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process, as ADMIN."""
    async with http_client(app, admin_key) as client:
        yield client


@pytest.fixture(scope="session")
def per_field_app(database_url: str, app: FastAPI) -> FastAPI:
    """The service with COMPILED_READS=off: every field through its resolver."""
    settings = Settings(database_url=database_url, compiled_reads=False)
    return create_app(settings, database_url, app.state.schema)


@pytest.fixture
async def per_field_client(
    per_field_app: FastAPI, admin_key: str
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the per-field app, as ADMIN."""
    async with http_client(per_field_app, admin_key) as client:
        yield client


@dataclass
class StatementLog:
    """SQL statements the app's engine ran while recording."""

    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def sql(app: FastAPI, per_field_app: FastAPI) -> Any:
    """Record the SQL statements the apps run: through the ORM's engine and the read pool."""
    log = StatementLog()

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        log.statements.append(statement)

    for served in (app, per_field_app):
        event.listen(served.state.engine.sync_engine, "before_cursor_execute", record)
        served.state.compiled.pool.observers.append(log.statements.append)
    yield log
    for served in (app, per_field_app):
        event.remove(served.state.engine.sync_engine, "before_cursor_execute", record)
        served.state.compiled.pool.observers.remove(log.statements.append)


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST a GraphQL operation; return the JSON body (HTTP must be 200)."""
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def both_paths(
    client: httpx.AsyncClient,
    per_field_client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The answer of both read paths (the compiled app twice: its executor, then its short
    path), asserted to be the same apart from ``extensions.compiled``."""
    expected = await gql(per_field_client, query, variables)
    for _ in range(2):
        answer = await gql(client, query, variables)
        answer.get("extensions", {}).pop("compiled", None)
        assert answer == expected
    return expected
