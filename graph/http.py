"""Answers given at the HTTP level, always as JSON with a code: 401, 413, 503, 500.

Also the request-size limit, an ASGI middleware in front of everything: a body larger than
``max_bytes`` (by its Content-Length, or as it streams in) is answered 413 before any of it is
parsed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import orjson

from graph.errors import SERVICE_UNAVAILABLE, unavailable_error

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RETRY_AFTER = "1"  # seconds: a database restart or failover is usually over within a few


class ServiceUnavailable(Exception):
    """The database could not serve the request (raised outside GraphQL execution)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def error_body(message: str, code: str, **extensions: Any) -> dict[str, Any]:
    """A GraphQL-shaped body holding one error."""
    return {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}


def unavailable_body(reason: str, request_id: str) -> dict[str, Any]:
    """The body of a 503: one retryable SERVICE_UNAVAILABLE error."""
    return {"errors": [unavailable_error(reason, request_id)]}


def unavailable_errors(errors: Any) -> list[Any]:
    """The SERVICE_UNAVAILABLE errors of a GraphQL response's errors (a 503 when any)."""
    return [
        e
        for e in errors or ()
        if isinstance(e, dict) and (e.get("extensions") or {}).get("code") == SERVICE_UNAVAILABLE
    ]


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    """Write a whole JSON response on a raw ASGI connection."""
    payload = orjson.dumps(body)
    raw = [
        (b"content-length", str(len(payload)).encode()),
        (b"content-type", b"application/json"),
        *((name.encode(), value.encode()) for name, value in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` delivering ``body`` (read already) as one message, then ``receive``'s."""
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


class BodyLimitMiddleware:
    """Refuses request bodies larger than ``max_bytes`` with 413, before anything parses them.

    GraphQL requests are small, so the body is read here whole (up to the limit) and handed on
    as one message; a client that disconnects meanwhile is simply let go.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replay(b"".join(chunks), receive), send)

    async def _refuse(self, send: Send) -> None:
        await send_json(
            send,
            413,
            error_body(
                f"The request body is larger than {self.max_bytes} bytes.",
                "REQUEST_TOO_LARGE",
                limit=self.max_bytes,
            ),
            {"connection": "close"},
        )


async def call(app: ASGIApp, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """POST ``body`` to ``path`` of ``app`` in-process, as a client would over HTTP.

    The request passes every middleware and handler a network request passes, so what it may
    do and what it costs are exactly those of one sent by the caller it names.
    """
    raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": raw_headers,
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
        "state": {},
    }
    delivered, done = False, anyio.Event()
    status, chunks = 500, []

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    await app(scope, receive, send)
    done.set()
    return status, b"".join(chunks)
