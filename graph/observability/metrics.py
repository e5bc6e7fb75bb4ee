"""Prometheus metrics, served on ``GET /metrics``; safe under ``lending serve --workers N``.

With several worker processes, ``PROMETHEUS_MULTIPROC_DIR`` (set by ``lending serve`` before the
workers start) makes every process write its samples to files there, and a scrape of any worker
sums them; gauges count live processes only. With one process the samples stay in memory.

Labels are bounded: an operation's name is one a process has seen among its first
``MAX_OPERATION_NAMES`` (later ones count as ``other``), codes come from the service's own
vocabularies, and types and outcomes are fixed sets.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import math
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from db.replica import LAGGING, OK, STATES, UNREACHABLE, Replica
from db.tasks import stop

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"
MAX_OPERATION_NAMES = 200
if _shared := os.environ.get(MULTIPROCESS):
    # Made here if missing: a metric without labels opens its file in it as it is made, below.
    os.makedirs(_shared, exist_ok=True)
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,63}$")

REQUESTS = Counter(
    "lending_requests",
    "GraphQL requests answered, by operation name, operation type and outcome (ok, "
    "user_errors, errors, unauthenticated, unavailable, rejected).",
    ["operation", "type", "outcome"],
)
DURATION = Histogram(
    "lending_request_duration_seconds",
    "Time to answer a GraphQL request, by operation type.",
    ["type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
USER_ERRORS = Counter("lending_user_errors", "userErrors returned by mutations, by code.", ["code"])
ERRORS = Counter("lending_errors", "Request errors (top-level `errors`), by code.", ["code"])
REPLAYS = Counter(
    "lending_idempotent_replays", "Mutations answered from an idempotency key's stored result."
)
ROOT_FIELDS = Counter(
    "lending_root_fields",
    "Query root fields answered, by path: compiled (one SQL statement) or per_field.",
    ["path"],
)
STATEMENTS = Counter("lending_sql_statements", "SQL statements run for GraphQL requests.")
POOL = Gauge(
    "lending_db_pool_connections",
    "Database connections by pool (orm: writes and per-field reads; read: compiled reads; "
    "replica_orm, replica_read: the same reads of queries on the replica) and state (in_use, "
    "idle, waiting: requests waiting for one).",
    ["pool", "state"],
    multiprocess_mode="livesum",
)
REPLICA_READS = Counter(
    "lending_replica_reads",
    "SQL statements of queries, by where they were answered: replica, or the primary because "
    "the replica was unreachable (primary_unreachable: away, not a standby, or it cancelled the "
    "read) or too far behind (primary_lagging). Only with a replica configured.",
    ["route"],
)
REPLICA_LAG = Gauge(
    "lending_replica_lag_seconds",
    "How far the replica was behind the primary at its last check (the most any process "
    "saw); NaN when it could not be measured (the replica is unreachable).",
    multiprocess_mode="livemax",
)
REPLICA_STATE = Gauge(
    "lending_replica_state",
    "Processes finding the replica in each state: ok (queries read from it), lagging, "
    "unreachable (queries read from the primary).",
    ["state"],
    multiprocess_mode="livesum",
)
# The routes of db.replica, as the metric names them.
_REPLICA_ROUTES = {OK: "replica", UNREACHABLE: "primary_unreachable", LAGGING: "primary_lagging"}
SUBSCRIPTIONS = Gauge(
    "lending_subscriptions",
    "Subscriptions open (loanEvents).",
    multiprocess_mode="livesum",
)


@contextlib.asynccontextmanager
async def open_subscription() -> AsyncIterator[None]:
    """Count a subscription as open while the block runs."""
    SUBSCRIPTIONS.inc()
    try:
        yield
    finally:
        SUBSCRIPTIONS.dec()


_CHILDREN: dict[tuple[int, tuple[str, ...]], Any] = {}


def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, remembered: a request reports half a dozen of them, and the
    client library's lookup costs microseconds each (label values are bounded: operation names
    by OperationNames, codes and types by the service's own sets)."""
    key = (id(metric), values)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*values)
    return found


class OperationNames:
    """The operation label of a request: its name while few names have been seen."""

    def __init__(self, limit: int = MAX_OPERATION_NAMES) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def label(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if name in self.seen:
            return name
        if len(self.seen) >= self.limit or not _NAME.match(name):
            return "other"
        self.seen.add(name)
        return name


def registry() -> CollectorRegistry | None:
    """The registry a scrape reads: every worker's files when multiprocess, else the default."""
    if not os.environ.get(MULTIPROCESS):
        return None
    collected = CollectorRegistry()
    MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
    return collected


PoolSample = Callable[[], dict[tuple[str, str], float]]


class Sampler:
    """Copies what live objects know into the metrics: the pools' use (``pools`` reads them),
    and the replica's state, lag and counters (plain attributes of the one ``Replica``)."""

    def __init__(self, pools: PoolSample, replica: Replica | None = None) -> None:
        self.pools = pools
        self.replica = replica
        self._reported = dict.fromkeys(STATES, 0)  # the replica's counts already added

    def update(self) -> None:
        update_pool(self.pools())
        replica = self.replica
        if replica is None:
            return
        for route, count in replica.reads.items():
            REPLICA_READS.labels(_REPLICA_ROUTES[route]).inc(count - self._reported[route])
            self._reported[route] = count
        for state in STATES:
            REPLICA_STATE.labels(state).set(1 if replica.state == state else 0)
        REPLICA_LAG.set(math.nan if replica.lag_ms is None else replica.lag_ms / 1000)


def endpoint(
    sampler: Sampler, token: str | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """``GET /metrics`` (the Prometheus text format), reading this process's pools and replica
    first; with ``token``, only for ``Authorization: Bearer <token>`` (401 otherwise)."""
    expected = f"Bearer {token}".encode() if token else None

    async def metrics(request: Request) -> Response:
        if expected is not None and not hmac.compare_digest(
            request.headers.get("authorization", "").encode("latin-1", "replace"), expected
        ):
            return Response(
                orjson.dumps(
                    {
                        "errors": [
                            {
                                "message": "Send the metrics token: Authorization: Bearer <token>.",
                                "extensions": {"code": "UNAUTHENTICATED"},
                            }
                        ]
                    }
                ),
                status_code=401,
                media_type="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        sampler.update()
        found = registry()
        body = generate_latest(found) if found is not None else generate_latest()
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics


@contextlib.asynccontextmanager
async def sampling(sampler: Sampler, every: float = 1.0) -> AsyncIterator[None]:
    """Keep the pool and replica metrics current while the app runs."""

    async def loop() -> None:
        while True:
            sampler.update()
            await asyncio.sleep(every)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        await stop(task)


def update_pool(values: dict[tuple[str, str], float]) -> None:
    """Set the pool gauges from {(pool, state): value}."""
    for (pool, state), value in values.items():
        POOL.labels(pool, state).set(value)
