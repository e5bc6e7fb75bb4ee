"""Engine and session factory for the async PostgreSQL connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import cache
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool

from db.errors import OUTAGE, Outage, disconnected

P = ParamSpec("P")
T = TypeVar("T")


def async_url(url: str) -> str:
    """Turn any PostgreSQL URL (postgres://, postgresql://, +psycopg) into an asyncpg one."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def connect_arguments(url: str) -> dict[str, Any]:
    """asyncpg's connection arguments for a PostgreSQL URL (a Unix socket given as ?host=)."""
    parsed = make_url(async_url(url))
    return {
        "user": parsed.username,
        "password": parsed.password or None,
        "database": parsed.database or "postgres",
        "host": parsed.query.get("host") or parsed.host,
        "port": parsed.port,
    }


async def raw_connection(url: str) -> Any:
    """A plain asyncpg connection (for LISTEN and maintenance), outside the pool."""
    return await asyncpg.connect(**connect_arguments(url))


def server_settings(
    application_name: str, statement_timeout: float, lock_timeout: float = 0.0
) -> dict[str, str]:
    """The session settings of the service's connections (timeouts in seconds, 0: none)."""
    found = {"application_name": application_name}
    if statement_timeout > 0:
        found["statement_timeout"] = str(round(statement_timeout * 1000))
    if lock_timeout > 0:
        found["lock_timeout"] = str(round(lock_timeout * 1000))
    return found


# Startup parameters a transaction pooler carries from client to server connection: PgBouncer
# tracks these, and sends SET on a server connection it lends to a client whose values differ
# from what the server reported (another round trip); it refuses any other. Every connection
# of the service sends the same values through a pooler, spelled as PostgreSQL reports them
# (asyncpg's own 'utf-8' is overridden), so that it never has to.
POOLED_STARTUP = {
    "client_encoding": "UTF8",
    "DateStyle": "ISO, MDY",
    "TimeZone": "UTC",
    "application_name": "lending",
}


def connection_options(settings: dict[str, str], *, pooled: bool = False) -> dict[str, Any]:
    """asyncpg's connect arguments that give a connection the session ``settings``.

    Direct to PostgreSQL, they are sent when connecting and asyncpg caches each statement
    prepared, by name, for the connection's life. Through a pooler in transaction mode
    (``pooled``) consecutive transactions may run on different server connections, so neither
    holds: statements are unnamed (asyncpg's cache off), the connection starts with
    ``POOLED_STARTUP``, and every other setting is set in every transaction by ``SET LOCAL``,
    sent with its ``BEGIN`` in one round trip (``LocalSettings``). Settings outside a
    transaction do not hold: callers that need them run in one. (Timestamps and dates are
    written in UTC and ISO 8601 by the statements themselves, whatever the session's zone.)
    """
    if not pooled:
        return {"server_settings": settings}
    local = {k: v for k, v in settings.items() if k not in POOLED_STARTUP}
    found: dict[str, Any] = {"server_settings": POOLED_STARTUP, "statement_cache_size": 0}
    if local:
        found["connection_class"] = _local_settings(tuple(sorted(local.items())))
    return found


@cache
def _local_settings(settings: tuple[tuple[str, str], ...]) -> type[asyncpg.Connection]:
    """An asyncpg connection class whose every transaction begins with ``settings`` set."""
    assignments = " ".join(f"SET LOCAL {name} = '{value}';" for name, value in settings)
    return type("LocalSettings", (LocalSettings,), {"assignments": assignments})


class LocalSettings(asyncpg.Connection):  # type: ignore[misc]
    """A connection whose every transaction begins with ``assignments`` (``SET LOCAL …;``).

    asyncpg (and SQLAlchemy through it) begins a transaction with one ``BEGIN …;`` sent alone
    by the simple query protocol, which takes several statements at once: the assignments go
    with it, costing no round trip of their own.
    """

    assignments = ""

    async def execute(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109 - asyncpg's own signature
    ) -> str:
        if not args and query.startswith("BEGIN"):
            query = f"{query} {self.assignments}"
        result: str = await super().execute(query, *args, timeout=timeout)
        return result


def _refuse_closed(dbapi_connection: Any, *_: Any) -> None:
    """A pooled connection the server has closed (a restart, a failover) is replaced, unused.

    asyncpg notices the server's goodbye when it arrives, so this costs no round trip; the
    pool then opens a fresh connection for the same checkout.
    """
    if dbapi_connection._connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 5.0,
    statement_timeout: float = 0.0,
    lock_timeout: float = 0.0,
    outage: Outage | None = OUTAGE,
    pooled: bool = False,
    application_name: str = "lending",
) -> AsyncEngine:
    """An asyncpg engine; prepared statements are cached per connection by asyncpg (unless
    ``pooled``: ``url`` is a pooler in transaction mode, see ``connection_options``). Its
    connections tell PostgreSQL ``application_name`` (pg_stat_activity shows it).

    A request waits at most ``pool_timeout`` seconds for a free connection, or to connect; a
    statement at most ``lock_timeout`` seconds for a lock (then PostgreSQL refuses it with
    55P03, a retryable 503), so writers queued behind one held row give their connections
    back; a connection opened ends ``outage`` (None for a replica, whose health is watched
    apart).
    """
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=False,
        poolclass=CountingPool,
        # Errors and logs never carry the values of a statement (emails, amounts, key hashes).
        hide_parameters=True,
        connect_args={
            **connection_options(
                server_settings(application_name, statement_timeout, lock_timeout), pooled=pooled
            ),
            # SQLAlchemy's own cache of prepared statements, on top of asyncpg's
            **({"prepared_statement_cache_size": 0} if pooled else {}),
            "timeout": pool_timeout,
        },
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed)
    if outage is not None:
        event.listen(engine.sync_engine, "connect", lambda *_: outage.recovered())
    return engine


class CountingPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's pool for asyncio, counting the callers waiting for a connection."""

    _sqla_logger_namespace = "sqlalchemy.pool.impl.CountingPool"  # quiet, as SQLAlchemy's own
    waiting = 0

    def _do_get(self) -> Any:
        self.waiting += 1
        try:
            return super()._do_get()
        finally:
            self.waiting -= 1


def pool_usage(engine: AsyncEngine) -> dict[str, float]:
    """Connections of ``engine``'s pool in use and idle, and callers waiting for one."""
    pool = engine.pool
    assert isinstance(pool, CountingPool)
    return {"in_use": pool.checkedout(), "idle": pool.checkedin(), "waiting": pool.waiting}


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (no lazy reloads)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class QueryRoute(Protocol):
    """Where a query's reads may go instead of the primary: a read replica (db.replica), given
    to the session by its owner rather than imported here."""

    def sessions_for_query(
        self, primary: async_sessionmaker[AsyncSession]
    ) -> tuple[async_sessionmaker[AsyncSession], str]:
        """The sessions a query reads from now, and the route its reads are counted by."""

    def count(self, route: str) -> None:
        """One read answered where ``route`` sent it."""

    def fallback(self, error: BaseException) -> str | None:
        """The route of a read that failed on the replica and is read again on the primary,
        or None when the error is the read's own."""


class RequestSession:
    """One session per request, shared by its DataLoaders one statement at a time.

    An AsyncSession must not run two statements at once, yet loaders of one GraphQL level
    dispatch concurrently; the lock serializes them on a single connection and snapshot.

    A resolver may be cancelled while its statement runs (graphql-core cancels the siblings of
    a failed non-null root field). Cancelling asyncpg mid-statement would leave the pooled
    connection unusable for the next request, so each call runs in its own task that the
    caller's cancellation does not reach; loads shared by several fields are kept running
    the same way (``keep``), and ``close`` waits for both.

    With a ``replica``, a request known to be a query (``for_query``) reads from it while it
    is usable; everything else (mutations and their payloads, subscriptions) reads from the
    primary, which has what the request wrote.
    """

    def __init__(
        self, factory: async_sessionmaker[AsyncSession], replica: QueryRoute | None = None
    ) -> None:
        self._factory = factory
        self._replica = replica
        self._query = False  # the request is a query: its reads may go to the replica
        self._route: str | None = None  # where the open session's reads are counted
        self._on_replica = False  # the open session is the replica's
        self._session: AsyncSession | None = None
        self._lock = asyncio.Lock()
        self._running: set[asyncio.Future[Any]] = set()
        self._used = False  # a statement has succeeded in this request
        self._adopted: AsyncSession | None = None

    def for_query(self) -> None:
        """The request is a query: it writes nothing, so it may read from the replica."""
        self._query = self._replica is not None

    def _open(self) -> AsyncSession:
        self._on_replica = False
        if not self._query or self._replica is None:
            return self._factory()
        factory, self._route = self._replica.sessions_for_query(self._factory)
        self._on_replica = factory is not self._factory
        return factory()

    @asynccontextmanager
    async def use(self) -> AsyncIterator[AsyncSession]:
        """The request's session, held exclusively for the block."""
        async with self._lock:
            if self._session is None:
                self._session = self._open()
            yield self._session

    async def run(
        self,
        fn: Callable[Concatenate[AsyncSession, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Call a repository function with the request's session, shielded from cancellation.

        The request's first read is sent once more on a fresh connection when its connection
        is found dead (its server went away without a word): nothing was read on it yet. A read
        that fails on the replica for want of it is sent to the primary, as are the request's
        later reads.
        """

        async def call() -> T:
            async with self.use() as session:
                try:
                    found = await fn(session, *args, **kwargs)
                except Exception as error:
                    primary = await self._to_primary(error) if self._on_replica else None
                    if primary is not None:
                        found = await fn(primary, *args, **kwargs)
                    elif self._used or not disconnected(error):
                        raise
                    else:
                        await session.close()
                        found = await fn(session, *args, **kwargs)
                self._used = True
                if self._route is not None and self._replica is not None:
                    self._replica.count(self._route)
                return found

        task = asyncio.ensure_future(call())
        self._running.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    async def _to_primary(self, error: Exception) -> AsyncSession | None:
        """The request's session moved to the primary after ``error`` on the replica, or None
        when the error is the read's own."""
        assert self._replica is not None
        assert self._session is not None
        route = self._replica.fallback(error)
        if route is None:
            return None
        await _end(self._session)
        self._session, self._route, self._on_replica = self._factory(), route, False
        return self._session

    def keep(self, work: asyncio.Future[Any]) -> None:
        """Wait for ``work`` (a load that fields share) before the session is given back, even
        when every field that waited for it has been cancelled: it may still send statements."""
        if work not in self._running:
            self._running.add(work)
            work.add_done_callback(self._finished)

    async def _settle(self) -> None:
        """Wait until nothing of the request runs on its session: statements and loads, those
        whose callers were cancelled included, and what they start meanwhile."""
        while self._running:
            await asyncio.wait(set(self._running))

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here too, in case its caller was cancelled meanwhile

    async def adopt(self, session: AsyncSession) -> None:
        """Read through ``session`` (a dry run's open transaction) until ``release``.

        Reads then see what the transaction wrote and nobody else will ever see; its owner
        rolls it back after ``release``.
        """
        await self.close()
        async with self._lock:
            self._session = self._adopted = session
            self._used = True  # never sent again on a fresh connection: it is the transaction
            self._route, self._on_replica = None, False

    async def release(self) -> None:
        """Stop reading through an adopted session (its owner closes it)."""
        await self._settle()
        async with self._lock:
            if self._adopted is not None and self._session is self._adopted:
                self._session = None
            self._adopted = None
            self._used = False

    async def close(self) -> None:
        """Release the connection (reads only: nothing to commit)."""
        await self._settle()
        async with self._lock:
            if self._session is not None and self._session is not self._adopted:
                await _end(self._session)
            self._session = None


async def _end(session: AsyncSession) -> None:
    """Close a session of reads. Its connection may have died since its last read (its server
    went away): the reads are answered and nothing is to be committed, so that is no error."""
    try:
        await session.close()
    except Exception as error:
        if not disconnected(error):
            raise
        await session.invalidate()
