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

``one`` sends a statement the repositories build once per shape (a SQLAlchemy statement kept
in a module constant or a ``functools.cache``) the same way: compiled once per statement for
this dialect, its parameters converted by their types' own bind processors and its row by its
model's columns' result processors, as SQLAlchemy would. The row comes back as an instance of
the model made from those values, in no session: what the ORM would have loaded, without
its identity map or unit of work (which cost 0.6–1 ms of CPU per statement).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import Numeric, inspect
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from db.models import Base

M = TypeVar("M", bound=Base)
N = TypeVar("N", bound=Base)

_KEY = "lean_connection"


class LeanConnection:
    """The asyncpg connection under a session's connection, in the session's transaction."""

    def __init__(self, connection: AsyncConnection, adapted: Any, transaction: Any) -> None:
        self._connection = connection
        self._adapted = adapted  # SQLAlchemy's adapter of the asyncpg connection
        self._driver: asyncpg.Connection = adapted._connection
        self._sync: Connection = connection.sync_connection  # type: ignore[assignment]
        self._transaction = transaction  # the session's transaction it serves

    async def fetchval(self, sql: str, *arguments: Any) -> Any:
        """The first column of the first row (None without a row)."""
        return await self._run(self._driver.fetchval, sql, arguments)

    async def fetch(self, sql: str, *arguments: Any) -> list[asyncpg.Record]:
        """Every row."""
        found: list[asyncpg.Record] = await self._run(self._driver.fetch, sql, arguments)
        return found

    async def fetchrow(self, sql: str, *arguments: Any) -> asyncpg.Record | None:
        """The first row (None without one)."""
        return await self._run(self._driver.fetchrow, sql, arguments)

    @property
    def dialect(self) -> Dialect:
        return self._sync.dialect

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
    """The session's lean connection: made on the transaction's first use, then kept for as
    long as that transaction is active (it holds one connection from begin to end, so asking
    the session again, at the cost of a greenlet switch each time, would find the same one)."""
    found: LeanConnection | None = session.info.get(_KEY)
    transaction = session.sync_session.get_transaction()
    if (
        found is not None
        and transaction is not None
        and found._transaction is transaction
        and transaction.is_active
    ):
        return found
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    # (asked again: asking for the connection began the transaction if none was open)
    transaction = session.sync_session.get_transaction()
    found = session.info[_KEY] = LeanConnection(connection, raw.dbapi_connection, transaction)
    return found


@dataclass(frozen=True)
class _Statement:
    """A statement compiled for asyncpg: its SQL, and per numbered parameter its name, its
    type's bind processor and the value it was built with (for literal parameters)."""

    sql: str
    parameters: tuple[tuple[str, Callable[[Any], Any] | None, Any], ...]

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        found = []
        for name, process, built in self.parameters:
            value = values.get(name, built)
            found.append(process(value) if process is not None and value is not None else value)
        return found


_NUMERIC = 1700  # NUMERIC's type oid
_STATEMENTS: dict[int, tuple[ClauseElement, _Statement]] = {}
_LOADERS: dict[tuple[type, str], Callable[[asyncpg.Record], Any]] = {}
# The prefixes of ``pair``'s columns.
FIRST, SECOND = "a_", "b_"


def _compiled(statement: ClauseElement, dialect: Dialect) -> _Statement:
    kept = _STATEMENTS.get(id(statement))
    if kept is not None and kept[0] is statement:
        return kept[1]
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    names = compiled.positiontup or []
    made = _Statement(
        compiled.string,
        tuple(
            (
                name,
                compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect),
                compiled.binds[name].effective_value,
            )
            for name in names
        ),
    )
    _STATEMENTS[id(statement)] = (statement, made)  # the statement kept: its id stays its own
    return made


def _sent(statement: ClauseElement, dialect: Dialect, values: Mapping[str, Any]) -> list[Any]:
    """The SQL of ``statement`` and its arguments, as asyncpg takes them."""
    compiled = _compiled(statement, dialect)
    return [compiled.sql, *compiled.arguments(values)]


def _loader(model: type[M], dialect: Dialect, prefix: str = "") -> Callable[[asyncpg.Record], M]:
    """A function making a ``model`` instance from a row of its table's columns (each named
    ``prefix`` + its name)."""
    found = _LOADERS.get((model, prefix))
    if found is None:
        columns = [
            (attribute.key, prefix + attribute.columns[0].name, attribute.columns[0].type)
            for attribute in inspect(model).column_attrs
        ]
        # (a numeric column's processor asks which PostgreSQL type it reads: NUMERIC's oid,
        # whose values asyncpg gives as Decimal already)
        processors = [
            (
                key,
                name,
                kind.dialect_impl(dialect).result_processor(
                    dialect, _NUMERIC if isinstance(kind, Numeric) else None
                ),
            )
            for key, name, kind in columns
        ]

        def load(row: asyncpg.Record) -> M:
            values = {}
            for key, name, process in processors:
                value = row[name]
                values[key] = process(value) if process is not None else value
            return model.of(**values)

        _LOADERS[model, prefix] = found = load
    return found


async def one(
    session: AsyncSession, statement: ClauseElement, values: Mapping[str, Any], model: type[M]
) -> M | None:
    """The one row of ``statement`` (built once, see above) as a ``model``, or None, sent by
    asyncpg in the session's transaction."""
    found = await one_and(session, statement, values, model, 0)
    return None if found is None else found[0]


async def one_and(
    session: AsyncSession,
    statement: ClauseElement,
    values: Mapping[str, Any],
    model: type[M],
    extra: int,
) -> tuple[M, tuple[Any, ...]] | None:
    """As ``one``, for a statement returning the model's columns and then ``extra`` more
    values (as asyncpg gives them): the model, and those values."""
    connection = await lean(session)
    dialect = connection.dialect
    row = await connection.fetchrow(*_sent(statement, dialect, values))
    if row is None:
        return None
    return _loader(model, dialect)(row), tuple(row[len(row) - extra :]) if extra else ()


async def pair(
    session: AsyncSession,
    statement: ClauseElement,
    values: Mapping[str, Any],
    first: type[M],
    second: type[N],
) -> tuple[M, N] | None:
    """As ``one``, for a statement returning the columns of two models, labelled ``FIRST`` +
    name and ``SECOND`` + name (``labelled``): an instance of each."""
    connection = await lean(session)
    dialect = connection.dialect
    row = await connection.fetchrow(*_sent(statement, dialect, values))
    if row is None:
        return None
    return _loader(first, dialect, FIRST)(row), _loader(second, dialect, SECOND)(row)


def labelled(model: type, prefix: str) -> list[Any]:
    """The columns of ``model``'s table, each labelled ``prefix`` + its name (see ``pair``)."""
    return [column.label(prefix + column.name) for column in model.__table__.c]  # type: ignore[attr-defined]


async def rows(
    session: AsyncSession, statement: ClauseElement, values: Mapping[str, Any]
) -> list[asyncpg.Record]:
    """Every row of ``statement`` (built once) as asyncpg gives it: for columns whose values
    need no conversion (numbers, days, times, flags), read by name."""
    connection = await lean(session)
    return await connection.fetch(*_sent(statement, connection.dialect, values))
