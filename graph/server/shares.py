"""No key holds more than its share of the process: a cap on a key's requests in flight.

A key has at most ``limit`` GraphQL requests being worked on at once in a process (by default
half the database pool); more wait up to ``wait_s`` for a place, then are answered HTTP 429
with ``Retry-After`` and a retryable ``THROTTLED`` error. A place is held from the moment the
request is read until its answer starts (a subscription streamed over HTTP holds none while
it waits for events). Shares are per process, as cost budgets are (graph.budgets).

A key told to wait by its budget (a 429 with Retry-After) that comes back early is held here,
unread, until that time has passed (at most ``MAX_HELD_S``), then served as any request, or
answered 429 with the time still to wait. A client that does not wait gets nothing sooner than
one that does, and costs the process an HTTP exchange per connection and second, not as many as
it can send: 50 connections sending without waiting took 4,300 refusals a second of the
process's one core, and another key's light query waited 75 ms for its turn.
"""

from __future__ import annotations

import asyncio
import time

from graph.budgets import THROTTLED, Crowded, KeyShares, retry_after
from graph.server.http import ASGIApp, Message, Receive, Scope, Send, send_json
from lending.access import bearer_credential


class KeyShareMiddleware:
    """At most ``shares.limit`` GraphQL requests of one key at work at once (see the module
    docstring); requests without a key pass (they are refused further in)."""

    def __init__(self, app: ASGIApp, shares: KeyShares, path: str = "/graphql") -> None:
        self.app = app
        self.shares = shares
        self.path = path
        self._waiting: dict[str, float] = {}  # key → monotonic time it was told to wait for

    def _told_to_wait(self, key: str) -> float | None:
        """Seconds the key was told to wait still to run, if any."""
        until = self._waiting.get(key)
        if until is None:
            return None
        left = until - time.monotonic()
        if left <= 0:
            del self._waiting[key]
            return None
        return left

    def _tell_to_wait(self, key: str, seconds: float) -> None:
        if len(self._waiting) >= MAX_WAITING:
            now = time.monotonic()
            self._waiting = {k: t for k, t in self._waiting.items() if t > now}
            if len(self._waiting) >= MAX_WAITING:
                return  # remembered no longer: such requests go through and are refused there
        self._waiting[key] = time.monotonic() + seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _bearer(scope) if scope["type"] == "http" and scope["path"] == self.path else None
        if key is None:
            await self.app(scope, receive, send)
            return
        left = self._told_to_wait(key)
        if left is not None:
            await asyncio.sleep(min(left, MAX_HELD_S))
            left = self._told_to_wait(key)
            if left is not None:
                await _throttled(send, scope, left, "this key was told to wait")
                return
        try:
            async with self.shares.place(key) as release:

                async def answering(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        release()  # the work is done (or, for a stream, waits for events)
                        if message["status"] == 429:
                            wait = _retry_after(message)
                            if wait is not None:
                                self._tell_to_wait(key, wait)
                    await send(message)

                await self.app(scope, receive, answering)
        except Crowded as crowded:
            await _throttled(send, scope, self.shares.wait_s, str(crowded))


MAX_WAITING = 10_000  # keys told to wait, remembered at once
MAX_HELD_S = 1.0  # the longest a request of a key told to wait is held before its answer


async def _throttled(send: Send, scope: Scope, wait_s: float, why: str) -> None:
    seconds = retry_after(wait_s)
    error = {
        "message": f"Throttled: {why}. Retry in {seconds} s.",
        "extensions": {
            "code": THROTTLED,
            "retryable": True,
            "retryAfter": seconds,
            "requestId": scope.get("state", {}).get("request_id"),
        },
    }
    await send_json(send, 429, {"errors": [error]}, {"retry-after": str(seconds)})


def _retry_after(start: Message) -> float | None:
    for name, value in start.get("headers", ()):
        if name.lower() == b"retry-after" and value.isdigit():
            return float(value)
    return None


def _bearer(scope: Scope) -> str | None:
    """The key (or token) of an ``Authorization: Bearer`` header, spelled as the lookup reads it."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bearer_credential(value.decode("latin-1"))
    return None
