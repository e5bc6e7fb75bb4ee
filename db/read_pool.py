"""The connections compiled reads run on: one statement per read, no transaction, no ORM."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from db.session import connect_arguments

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

    def __init__(self, url: str, size: int) -> None:
        self._url = url
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        # Called with each statement's text before it runs (tests count statements with it).
        self.observers: list[Callable[[str], None]] = []

    async def _open(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    **connect_arguments(self._url),
                    min_size=1,
                    max_size=self._size,
                    server_settings=SESSION,
                    reset=_nothing_to_reset,
                )
            return self._pool

    async def fetch_text(self, sql: str, arguments: Sequence[Any]) -> str:
        """The single text value a statement returns."""
        pool = self._pool or await self._open()
        for observe in self.observers:
            observe(sql)
        value: str = await pool.fetchval(sql, *arguments)
        return value

    async def close(self) -> None:
        """Close every connection."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
