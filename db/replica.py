"""A streaming replica that queries read from while it keeps up, and how it is doing.

Every server process watches the replica itself, every ``CHECK_EVERY`` seconds: it asks the
primary how far it has flushed its WAL (what it can have sent), then the replica how far it has
replayed it. The lag is how long ago the primary was first seen at a position the replica has
still not replayed; 0 when it has replayed all the primary had flushed. Checks are
``CHECK_EVERY`` apart, so the lag is known to within that. A replica behind every position
remembered (as when the process starts) is judged by the commit time of the last transaction
it replayed. While the primary itself cannot be asked, the last judgement stands.

The replica is ``ok`` (queries read from it), ``lagging`` (more than ``max_lag_ms`` behind) or
``unreachable`` (it cannot be asked, is not a standby, or a read found it gone). A read sent to
it that fails because it went away is read again on the primary, and the replica is not used
again before a check finds it back; a read it cancelled to replay the primary's changes is read
again on the primary too. One warning is logged when it becomes unusable, one line when it is
usable again. The counters are the process's own.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.errors import SLOW_STATEMENT, conflicts_with_recovery, unavailable
from db.reads.pool import ReadPool
from db.session import create_engine, create_sessionmaker, pool_usage, raw_connection
from db.tasks import stop

log = logging.getLogger("lending.replica")

OK, LAGGING, UNREACHABLE = "ok", "lagging", "unreachable"
STATES = (OK, LAGGING, UNREACHABLE)
CHECK_EVERY = 0.5  # seconds between two checks
CHECK_TIMEOUT = 1.0  # seconds one question of a check may take
HISTORY = 240  # primary positions remembered (two minutes of checks)

PRIMARY_POSITION = "SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint AS flushed"
REPLICA_POSITION = """SELECT pg_is_in_recovery() AS standby,
  (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS replayed,
  (extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::float8
    AS since_commit_ms"""

Sessions = async_sessionmaker[AsyncSession]


class Replica:
    """The replica's connections for queries, its health, and where reads went.

    ``state``, ``lag_ms`` (the last lag measured, None when it could not be) and ``reads``
    (statements answered, by route: ``ok`` on the replica, ``lagging`` or ``unreachable`` on
    the primary because the replica was so) are plain attributes, for metrics to read.
    """

    def __init__(
        self,
        url: str,
        primary_url: str,
        *,
        max_lag_ms: float,
        pool_size: int = 10,
        max_overflow: int = 10,
        pool_timeout: float = 5.0,
        statement_timeout: float = 0.0,
    ) -> None:
        self.url = url
        self.primary_url = primary_url
        self.max_lag_ms = max_lag_ms
        # The replica's health is its own: its connections neither start nor end an outage.
        self.engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            statement_timeout=statement_timeout,
            outage=None,
        )
        self.sessionmaker: Sessions = create_sessionmaker(self.engine)
        self.pool = ReadPool(
            url, pool_size, timeout=pool_timeout, statement_timeout=statement_timeout, outage=None
        )
        self.state = UNREACHABLE  # until the first check
        self.lag_ms: float | None = None
        self.reads = dict.fromkeys(STATES, 0)
        self._positions: deque[tuple[float, int]] = deque(maxlen=HISTORY)
        self._connections: dict[str, Any] = {}
        self._unusable_since: float | None = None  # set once warned
        self._lost_at = -math.inf
        self._checked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ---- routing ---------------------------------------------------------------------------

    def sessions_for_query(self, primary: Sessions) -> tuple[Sessions, str]:
        """Where a query's session reads now: the replica's sessions while it is usable, else
        ``primary``; and the route, to ``count`` its reads by."""
        route = self.state
        return (self.sessionmaker if route == OK else primary), route

    def count(self, route: str) -> None:
        """One read answered where ``route`` sent it."""
        self.reads[route] += 1

    def fallback(self, error: BaseException) -> str | None:
        """The route of a read that failed on the replica with ``error`` and is to be read
        again on the primary, or None when the error is the read's own (it then fails).

        A replica gone away is not used again before a check finds it back.
        """
        if conflicts_with_recovery(error):
            return UNREACHABLE
        reason = unavailable(error)
        if reason is None or reason == SLOW_STATEMENT:  # that is the query's doing
            return None
        self._lost_at = time.monotonic()
        self._judge(UNREACHABLE, None, reason)
        return UNREACHABLE

    async def fetch_text(self, sql: str, arguments: Sequence[Any], primary: ReadPool) -> str:
        """A compiled read: on the replica while it is usable, else (or if it fails there for
        want of the replica) on ``primary``."""
        route = self.state
        if route == OK:
            try:
                text = await self.pool.fetch_text(sql, arguments)
            except Exception as error:
                found = self.fallback(error)
                if found is None:
                    raise
                route = found
        if route != OK:
            text = await primary.fetch_text(sql, arguments)
        self.count(route)
        return text

    def usage(self) -> dict[str, dict[str, float]]:
        """The replica's pools (orm: per-field reads, read: compiled reads), as pool_usage."""
        return {"orm": pool_usage(self.engine), "read": self.pool.usage()}

    # ---- health ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start checking, and return once the first check is done (a few seconds at most:
        each question of a check has ``CHECK_TIMEOUT``)."""
        if self._task is None:
            self._task = asyncio.create_task(self._watch())
        await self._checked.wait()

    async def _watch(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("replica check failed")
            self._checked.set()
            await asyncio.sleep(CHECK_EVERY)

    async def check(self) -> None:
        """Measure the lag once, and judge the replica by it."""
        started = time.monotonic()
        try:
            flushed = (await self._ask(self.primary_url, PRIMARY_POSITION))["flushed"]
        except Exception:
            return  # nothing to compare with: the last judgement stands
        self._positions.append((started, flushed))
        try:
            found = await self._ask(self.url, REPLICA_POSITION)
        except Exception as error:
            self._judge(UNREACHABLE, None, unavailable(error) or str(error))
            return
        if not found["standby"]:
            self._judge(UNREACHABLE, None, "it is not a standby")
            return
        lag = self.lag(found["replayed"] or 0, found["since_commit_ms"], time.monotonic())
        if lag > self.max_lag_ms:
            self._judge(LAGGING, lag, f"{lag:.0f} ms behind, over {self.max_lag_ms:g} ms")
        elif self._lost_at < started:  # a read that found it gone meanwhile wins
            self._judge(OK, lag, "")

    def lag(self, replayed: int, since_commit_ms: float | None, now: float) -> float:
        """How long (ms) the replica, having replayed the WAL up to ``replayed``, has been
        behind the primary positions remembered (each with the time it was seen)."""
        if replayed >= self._positions[-1][1]:
            return 0.0
        if self._positions[0][1] > replayed:  # behind every position remembered
            return math.inf if since_commit_ms is None else max(since_commit_ms, 0.0)
        first_ahead = next(at for at, lsn in self._positions if lsn > replayed)
        return (now - first_ahead) * 1000

    def _judge(self, state: str, lag_ms: float | None, reason: str) -> None:
        self.state, self.lag_ms = state, lag_ms
        if state != OK and self._unusable_since is None:
            self._unusable_since = time.monotonic()
            log.warning("replica %s (%s); queries read from the primary", state, reason)
        elif state == OK and self._unusable_since is not None:
            away = time.monotonic() - self._unusable_since
            self._unusable_since = None
            log.warning("replica usable again after %.1f s; queries read from it", away)

    async def _ask(self, url: str, sql: str) -> Any:
        """One row from ``url`` on the check's own connection, opened again when lost."""
        connection = self._connections.get(url)
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                if connection is None or connection.is_closed():
                    connection = self._connections[url] = await raw_connection(url)
                return await connection.fetchrow(sql)
        except BaseException:  # a connection cut off mid-question is unusable
            stale = self._connections.pop(url, None)
            if stale is not None:
                stale.terminate()
            raise

    async def close(self) -> None:
        """Stop checking; close every connection."""
        task, self._task = self._task, None
        await stop(task)
        for connection in self._connections.values():
            connection.terminate()
        self._connections.clear()
        await self.pool.close()
        await self.engine.dispose()
