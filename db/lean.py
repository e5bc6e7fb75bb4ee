"""The write path's fixed statements, sent by asyncpg on the session's own connection.

A mutation's few fixed statements (the idempotency claim and its stored result, the audit
chain's lock and append) need none of what SQLAlchemy does per call: no statement to build or
compile, no ORM identity map, no type conversion that asyncpg does not do itself. Sent through
``AsyncSession.execute`` each costs about 0.2 ms of CPU more than the statement itself; sent by
asyncpg it costs what the ceiling's statements cost (``bench/write_ceiling.py``).

They run on the connection of the mutation's session, inside its transaction: the transaction
is begun as SQLAlchemy begins it (so SQLAlchemy commits or rolls back the same one), errors
are asyncpg's own (``db.errors`` reads them), and each statement is reported to the engine's
``before_cursor_execute`` and ``after_cursor_execute`` listeners, as SQLAlchemy reports its
own: the telemetry's statement count, tracing's spans and the tests' statement log see them.

Statements are written with asyncpg's numbered parameters ($1, $2 …); asyncpg prepares each
once per connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import asyncpg
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_KEY = "lean_connection"


class LeanConnection:
    """The asyncpg connection under a session's connection, in the session's transaction."""

    def __init__(self, connection: AsyncConnection, adapted: Any) -> None:
        self._connection = connection
        self._adapted = adapted  # SQLAlchemy's adapter of the asyncpg connection
        self._driver: asyncpg.Connection = adapted._connection
        self._sync: Connection = connection.sync_connection  # type: ignore[assignment]

    async def fetchval(self, sql: str, *arguments: Any) -> Any:
        """The first column of the first row (None without a row)."""
        return await self._run(self._driver.fetchval, sql, arguments)

    async def _run(self, call: Any, sql: str, arguments: Sequence[Any]) -> Any:
        dispatch = self._sync.dispatch
        context = SimpleNamespace()  # what listeners may keep things on, as on SQLAlchemy's
        dispatch.before_cursor_execute(self._sync, None, sql, arguments, context, False)
        try:
            async with self._adapted._execute_mutex:
                if not self._driver.is_in_transaction():
                    await self._adapted._start_transaction()  # as SQLAlchemy's own cursor does
                return await call(sql, *arguments)
        except asyncio.CancelledError:
            # Cancelled mid-statement, the connection may be half-way through an exchange:
            # it must not go back to the pool.
            await self._connection.invalidate()
            raise
        finally:
            dispatch.after_cursor_execute(self._sync, None, sql, arguments, context, False)


async def lean(session: AsyncSession) -> LeanConnection:
    """The session's lean connection (made on first use, kept while the session lives)."""
    found: LeanConnection | None = session.info.get(_KEY)
    connection = await session.connection()
    if found is None or found._connection is not connection:
        raw = await connection.get_raw_connection()
        found = LeanConnection(connection, raw.dbapi_connection)
        session.info[_KEY] = found
    return found
