"""Telling a database that is away (or overloaded) from a bug, and logging outages once.

``unavailable`` looks through an exception's chain (SQLAlchemy wraps asyncpg, which wraps the
socket error) for the signs of a database that cannot serve right now: refused or lost
connections, a server starting up or shutting down, no free connection in time, a statement or
lock that ran out of time. Those answers are retryable for the client; anything else is a
fault. ``OUTAGE`` logs one warning when such trouble starts and one line when it ends, rather
than a traceback per request.
"""

from __future__ import annotations

import logging
import threading
import time

import asyncpg
from sqlalchemy import exc as sa_exc

log = logging.getLogger("lending.database")

SLOW_STATEMENT = "a statement ran out of time"
LOCKED = "a row stayed locked for too long"

# SQLSTATEs of a server that is away, going away, or out of capacity.
_UNAVAILABLE_STATES = {
    "57P01": "the database is shutting down",  # admin_shutdown
    "57P02": "the database crashed",  # crash_shutdown
    "57P03": "the database is starting up or shutting down",  # cannot_connect_now
    "53300": "the database has no free connection slots",  # too_many_connections
    "57014": SLOW_STATEMENT,  # query_canceled (statement_timeout)
    "55P03": LOCKED,  # lock_not_available (lock_timeout)
}

# What a hot standby cancels a read with when replay needs what the read holds.
_RECOVERY_CONFLICT_STATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is s for s in seen) or len(seen) > 20:
            continue
        seen.append(current)
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]
    return seen


class Unavailable(Exception):
    """Something a request needs besides the database cannot serve right now (retry later)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def unavailable(error: BaseException) -> str | None:
    """Why ``error`` means the service cannot serve right now (retry later), or None."""
    for item in _chain(error):
        if isinstance(item, Unavailable):
            return item.reason
        if isinstance(item, sa_exc.TimeoutError):
            return "no database connection was free in time"
        if isinstance(item, sa_exc.DBAPIError) and item.connection_invalidated:
            return "the connection to the database was lost"
        if isinstance(item, asyncpg.PostgresError):
            state = getattr(item, "sqlstate", None) or ""
            if state in _UNAVAILABLE_STATES:
                return _UNAVAILABLE_STATES[state]
            if state.startswith("08"):
                return "the connection to the database was lost"
        if isinstance(item, asyncpg.InterfaceError) and "closed" in str(item):
            return "the connection to the database was lost"
        if isinstance(item, asyncpg.InternalClientError):
            # a server's goodbye reaching a connection mid-use confuses asyncpg's state ("cannot
            # switch to state 15; another operation is in progress"): the connection is gone
            return "the connection to the database was lost"
        if isinstance(item, ConnectionError | TimeoutError | FileNotFoundError):
            return "the database cannot be reached"
        if isinstance(item, OSError) and item.errno is not None:
            return "the database cannot be reached"
    return None


def conflicts_with_recovery(error: BaseException) -> bool:
    """Whether ``error`` is a standby cancelling a read that stood in the way of replaying the
    primary's changes (the read itself is fine, and can be sent elsewhere)."""
    return any(
        isinstance(item, asyncpg.PostgresError)
        and getattr(item, "sqlstate", None) in _RECOVERY_CONFLICT_STATES
        for item in _chain(error)
    )


def disconnected(error: BaseException) -> bool:
    """Whether ``error`` is a connection found dead when used (safe to retry a read on)."""
    return unavailable(error) == "the connection to the database was lost"


class Outage:
    """Whether the database is in trouble, warned about once per episode."""

    def __init__(self) -> None:
        self._since: float | None = None
        self._lock = threading.Lock()

    @property
    def ongoing(self) -> bool:
        """Whether the last database use failed for want of a database."""
        return self._since is not None

    def noticed(self, reason: str) -> None:
        """A request found the database unavailable: warn, unless already warned.

        A statement that ran out of time or waited too long for a lock says nothing of the
        database, which answered: that request alone gave up, and is logged as such."""
        if reason in _ONE_REQUEST:
            log.warning("a request gave up: %s (answered 503, retryable)", reason)
            return
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        log.warning("database unavailable (%s); answering 503 until it is back", reason)

    def recovered(self) -> None:
        """A request used the database again."""
        if self._since is None:
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.warning("database available again after %.1f s", time.monotonic() - since)


# Reasons of one request that gave up, with the database well.
_ONE_REQUEST = {SLOW_STATEMENT, LOCKED}

OUTAGE = Outage()
