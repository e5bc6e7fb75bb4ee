"""The connections compiled reads run on: one statement per read, no transaction, no ORM."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import asyncpg

from db.errors import OUTAGE, SLOW_STATEMENT, Outage, Unavailable, disconnected
from db.session import connect_arguments, connection_options, server_settings

# Compiled statements are long (planning one takes milliseconds) and their parameters are
# keys, page sizes and dates that do not change the best plan: plan each once per connection.
# Timestamps and dates are written by the statements themselves in UTC and ISO 8601.
SESSION = {
    "application_name": "lending-reads",
    "TimeZone": "UTC",
    "DateStyle": "ISO",
    "plan_cache_mode": "force_generic_plan",
}


async def _nothing_to_reset(_connection: asyncpg.Connection) -> None:
    """A compiled read leaves no session state (no locks, cursors, settings) behind.

    asyncpg's default reset sends a statement on every release; this saves that round trip.
    """


class ReadPool:
    """An asyncpg pool opened on first use; asyncpg prepares and caches each statement.

    A compiled read is a single SELECT, so it needs no transaction: running it directly saves
    the BEGIN and ROLLBACK that a pooled ORM connection would send around it.
    """

    def __init__(
        self,
        url: str,
        size: int,
        *,
        timeout: float = 5.0,
        statement_timeout: float = 0.0,
        outage: Outage | None = OUTAGE,
        pooled: bool = False,
    ) -> None:
        self._url = url
        self._outage = outage  # what a successful read ends (None for a replica)
        self._size = size
        self._timeout = timeout  # to connect, or to wait for a free connection
        settings = {**SESSION, **server_settings(SESSION["application_name"], statement_timeout)}
        # Through a transaction pooler a setting holds only within a transaction, and a read
        # needs none: its time is bounded by asyncpg instead, which cancels the statement at
        # the deadline (PgBouncer passes the cancel on to the server connection running it),
        # sparing the BEGIN and COMMIT round trips. Every statement is unnamed there, so
        # planned where it runs: no generic plan to keep.
        self._deadline: float | None = None
        if pooled:
            del settings["plan_cache_mode"]
            settings.pop("statement_timeout", None)
            self._deadline = statement_timeout or None
        self._options = connection_options(settings, pooled=pooled)
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        # Called with each statement's text before it runs (tests count statements with it).
        self.observers: list[Callable[[str], None]] = []
        # Wraps each statement, from waiting for a connection to its answer (tracing's spans).
        self.around: Callable[[str], AbstractContextManager[Any]] = lambda _: nullcontext()
        self.waiting = 0  # callers waiting for a connection

    async def _open(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    **connect_arguments(self._url),
                    min_size=0,
                    max_size=self._size,
                    **self._options,
                    reset=_nothing_to_reset,
                    timeout=self._timeout,
                )
            return self._pool

    async def fetch_text(self, sql: str, arguments: Sequence[Any]) -> str:
        """The single text value a statement returns.

        A connection the server closed meanwhile is replaced by the pool before it is used; one
        found dead only when used (its server went away without a word) is replaced once, since
        a read is safe to send again.
        """
        pool = self._pool or await self._open()
        for observe in self.observers:
            observe(sql)
        with self.around(sql):
            for attempt in (1, 2):
                try:
                    value = await self._fetch(pool, sql, arguments)
                    break
                except Exception as error:
                    if attempt == 2 or not disconnected(error):
                        raise
        if self._outage is not None and self._outage.ongoing:
            self._outage.recovered()
        return value

    async def _fetch(self, pool: asyncpg.Pool, sql: str, arguments: Sequence[Any]) -> str:
        self.waiting += 1
        try:
            connection = await pool.acquire(timeout=self._timeout)
        finally:
            self.waiting -= 1
        try:
            value: str = await connection.fetchval(sql, *arguments, timeout=self._deadline)
        except TimeoutError as error:  # cancelled at the deadline (DB_POOLER=transaction)
            raise Unavailable(SLOW_STATEMENT) from error
        except asyncpg.InternalClientError as error:
            # A goodbye from a server shutting down can reach an idle connection mid-use and
            # confuse asyncpg's state: the connection is gone.
            raise asyncpg.ConnectionDoesNotExistError(str(error)) from error
        except asyncio.CancelledError:
            # Cancelled mid-statement (graphql-core cancels the other root fields when a
            # non-null one fails): the server may be left half-way through the exchange,
            # holding the statement's locks until the pool's idle timeout (minutes; a TRUNCATE
            # or a migration waits that long). Nothing resets it here, so it is closed.
            connection.terminate()
            raise
        finally:
            await pool.release(connection)
        return value

    def usage(self) -> dict[str, float]:
        """Connections in use and idle, and callers waiting for one."""
        if self._pool is None:
            return {"in_use": 0, "idle": 0, "waiting": self.waiting}
        size, idle = self._pool.get_size(), self._pool.get_idle_size()
        return {"in_use": size - idle, "idle": idle, "waiting": self.waiting}

    async def close(self) -> None:
        """Close every connection."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
