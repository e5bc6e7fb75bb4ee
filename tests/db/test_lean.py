"""The write path's fixed statements, sent by asyncpg on the session's connection, are part of
the session's transaction: kept by its commit, undone by its rollback, seen by the engine's
statement listeners."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, text

from db.lean import lean
from db.session import create_sessionmaker

INSERT = (
    "INSERT INTO idempotency_keys (actor, key, operation, request_hash) VALUES ($1, $2, 'x', 'h')"
)
COUNT = "SELECT count(*) FROM idempotency_keys WHERE actor = $1"


async def kept(engine, actor: str) -> int:
    async with engine.connect() as connection:
        found = await connection.execute(
            text("SELECT count(*) FROM idempotency_keys WHERE actor = :a"), {"a": actor}
        )
        return int(found.scalar_one())


@pytest.mark.parametrize("first", ["lean", "sqlalchemy"])
async def test_a_lean_statement_is_undone_by_the_sessions_rollback(engine, first):
    # given a session whose transaction is begun by a lean statement or by SQLAlchemy's own
    actor = f"lean-rollback-{first}"
    async with create_sessionmaker(engine)() as session:
        transaction = await session.begin()
        if first == "sqlalchemy":
            await session.execute(text("SELECT 1"))
        connection = await lean(session)
        await connection.fetchval(INSERT, actor, "k1")
        await session.execute(
            text(
                "INSERT INTO idempotency_keys (actor, key, operation, request_hash) "
                "VALUES (:a, 'k2', 'x', 'h')"
            ),
            {"a": actor},
        )
        # both statements see each other: one transaction
        assert await connection.fetchval(COUNT, actor) == 2
        # when it is rolled back
        await transaction.rollback()
    # then neither row is kept
    assert await kept(engine, actor) == 0


async def test_a_lean_statement_is_kept_by_the_sessions_commit(engine):
    actor = "lean-commit"
    async with create_sessionmaker(engine)() as session, session.begin():
        await (await lean(session)).fetchval(INSERT, actor, "k1")
    assert await kept(engine, actor) == 1


async def test_the_engines_statement_listeners_see_lean_statements(engine):
    seen: list[str] = []

    def before(_conn, _cursor, statement, *_):
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await (await lean(session)).fetchval(COUNT, "nobody")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)
    assert COUNT in seen


async def test_a_cancelled_lean_statement_does_not_return_its_connection_to_the_pool(engine):
    # given a lean statement cancelled while PostgreSQL runs it
    async with create_sessionmaker(engine)() as session:
        await session.begin()
        connection = await lean(session)
        driver = connection._driver
        task = asyncio.create_task(connection.fetchval("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # then its connection was closed rather than handed to the next caller mid-exchange
    assert driver.is_closed()
    async with create_sessionmaker(engine)() as session, session.begin():
        assert await (await lean(session)).fetchval("SELECT 41 + 1") == 42
