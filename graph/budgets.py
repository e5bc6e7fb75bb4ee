"""No key takes more than its share of cost: a bucket of cost points per key.

As Shopify's and GitHub's GraphQL APIs do it. Every key has a bucket of cost points (its own
``lending.access.Budget`` if it was created with one, else its role's). A query takes its
computed cost (graph.limits) from the bucket before anything runs, a mutation a fixed
``MUTATION_COST``; the bucket refills continuously at its restore rate up to its capacity. A
request the bucket cannot pay for runs nothing: it is answered HTTP 429 with ``Retry-After``
and a retryable ``THROTTLED`` error saying how many seconds to wait. Every answer that was
charged says where the bucket stands in ``extensions.cost.throttleStatus``.

Buckets are kept in the process: with N processes behind a load balancer a key may spend N
buckets (the README says how to size them). ``KeyShares`` below caps a key's requests in
flight (graph.server.shares over HTTP, graph.limits over a WebSocket).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from lending.access import Budget, Principal

THROTTLED = "THROTTLED"
MUTATION_COST = 100  # points a mutation takes, whatever its payload
MAX_BUCKETS = 10_000  # keys remembered per process (a forgotten bucket is a full one)


@dataclass(frozen=True)
class Charge:
    """What charging a request did: ``wait_s`` is None when it was paid."""

    cost: int
    wait_s: float | None
    status: dict[str, int]

    @property
    def paid(self) -> bool:
        return self.wait_s is None

    def error(self, request_id: str | None = None) -> dict[str, Any]:
        """The THROTTLED error of a request the bucket could not pay for."""
        assert self.wait_s is not None
        seconds = retry_after(self.wait_s)
        extensions: dict[str, Any] = {"code": THROTTLED, "retryable": True, "retryAfter": seconds}
        if request_id:
            extensions["requestId"] = request_id
        return {
            "message": f"Throttled: this key's budget of cost points cannot pay for this request "
            f"(cost {self.cost}, {self.status['currentlyAvailable']} available, restoring "
            f"{self.status['restoreRate']} a second). Retry in {seconds} s.",
            "extensions": extensions,
        }


def cost_report(nodes: int, limit: int, charge: Charge | None) -> dict[str, Any]:
    """``extensions.cost`` of an answer: the operation's nodes against the limit, and what
    the caller's bucket was charged and holds now."""
    report: dict[str, Any] = {"requestedNodes": nodes, "limit": limit}
    if charge is not None:
        report["requestedQueryCost"] = charge.cost
        report["throttleStatus"] = charge.status
    return report


def throttled_error(errors: Any) -> dict[str, Any] | None:
    """The THROTTLED error among a GraphQL response's errors (a 429 when there is one)."""
    for error in errors or ():
        if isinstance(error, dict) and (error.get("extensions") or {}).get("code") == THROTTLED:
            return error
    return None


def retry_after(seconds: float) -> int:
    """Whole seconds to wait, at least one (as Retry-After says them)."""
    return max(1, math.ceil(seconds))


class _Bucket:
    __slots__ = ("available", "budget", "updated")

    def __init__(self, budget: Budget, now: float) -> None:
        self.budget = budget
        self.available = float(budget.capacity)
        self.updated = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.available = min(
            float(self.budget.capacity), self.available + elapsed * self.budget.restore
        )
        self.updated = now

    def status(self) -> dict[str, int]:
        return {
            "maximumAvailable": self.budget.capacity,
            "currentlyAvailable": int(self.available),
            "restoreRate": self.budget.restore,
        }


class CostBudgets:
    """Every key's bucket in this process (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def _bucket(self, principal: Principal) -> _Bucket:
        budget = principal.cost_budget
        bucket = self._buckets.get(principal.name)
        if bucket is None or bucket.budget != budget:
            bucket = self._buckets[principal.name] = _Bucket(budget, self._clock())
            if len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(principal.name)
        bucket.refill(self._clock())
        return bucket

    def charge(self, principal: Principal, cost: int) -> Charge:
        """Take ``cost`` points (at least one) from the key's bucket, if it holds them."""
        cost = max(1, cost)
        bucket = self._bucket(principal)
        if cost > bucket.available:
            wait = (cost - bucket.available) / bucket.budget.restore
            return Charge(cost, wait, bucket.status())
        bucket.available -= cost
        return Charge(cost, None, bucket.status())

    def refund(self, principal: Principal, cost: int) -> None:
        """Give back what a request was charged when it ran nothing after all."""
        bucket = self._bucket(principal)
        bucket.available = min(float(bucket.budget.capacity), bucket.available + max(1, cost))


# ---- shares: a key's requests at work at once (graph.server.shares) --------------------------


class _Share:
    __slots__ = ("places", "users")

    def __init__(self, limit: int) -> None:
        self.places = asyncio.Semaphore(limit)
        self.users = 0


class Crowded(Exception):
    """A key's every place stayed taken for the whole wait."""


class KeyShares:
    """Every key's places in the process: at most ``limit`` at work at once, a newcomer waiting
    up to ``wait_s`` for one. Requests over HTTP take theirs in ``KeyShareMiddleware``; queries
    and mutations sent over a WebSocket take theirs as they execute (graph.limits)."""

    def __init__(self, limit: int, wait_s: float) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self._shares: dict[str, _Share] = {}

    @asynccontextmanager
    async def place(self, key: str) -> AsyncIterator[Callable[[], None]]:
        """Hold one of ``key``'s places for the block (Crowded when none came free in time);
        the block may give it back early by calling what it is given."""
        share = self._shares.get(key)
        if share is None:
            share = self._shares[key] = _Share(self.limit)
        share.users += 1
        try:
            try:
                async with asyncio.timeout(self.wait_s):
                    await share.places.acquire()
            except TimeoutError:
                raise Crowded(f"this key has {self.limit} requests at work already") from None
            held = True

            def release() -> None:
                nonlocal held
                if held:
                    held = False
                    share.places.release()

            try:
                yield release
            finally:
                release()
        finally:
            share.users -= 1
            if share.users == 0:
                del self._shares[key]
