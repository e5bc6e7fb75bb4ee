"""Answers given at the HTTP level, always as JSON with a code: 401, 413, 503, 500.

Also the request-size limit, an ASGI middleware in front of everything: a body larger than
``max_bytes`` (by its Content-Length, or as it streams in) is answered 413 before any of it is
parsed, and a GraphQL request whose JSON no parser should be trusted with
(graph.server.request_body) is answered 400 (415 when it is not JSON at all).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import orjson

from db.errors import OUTAGE, unavailable
from graph.errors import SERVICE_UNAVAILABLE, unavailable_error
from graph.server.request_body import BadRequest, check_get, check_post

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RETRY_AFTER = "1"  # seconds: a database restart or failover is usually over within a few
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

log = logging.getLogger("lending.app")


def request_id(incoming: str) -> str:
    """The client's request id when it is well-formed, else a fresh one."""
    return incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex


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


class RequestIdMiddleware:
    """Gives every request an id (the client's X-Request-ID when well-formed), returned on the
    response; a fault nothing else answered becomes a JSON 500 naming it, or a 503 when the
    database could not serve.

    Plain ASGI rather than Starlette's BaseHTTPMiddleware, which would turn every response into
    a stream without a Content-Length.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = request_id(incoming)
        scope.setdefault("state", {})["request_id"] = rid
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        started = False
        stamp = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), stamp]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            if started:
                raise
            reason = unavailable(error)
            if reason is not None:
                OUTAGE.noticed(reason)
                await send_json(
                    send_with_id, 503, unavailable_body(reason, rid), {"retry-after": RETRY_AFTER}
                )
                return
            log.exception("unhandled error [request_id=%s]", rid)
            await send_json(
                send_with_id,
                500,
                error_body(
                    f"Internal server error (request id {rid}).",
                    "INTERNAL_SERVER_ERROR",
                    requestId=rid,
                ),
            )


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

    def __init__(
        self, app: ASGIApp, max_bytes: int, max_json_depth: int = 32, path: str = "/graphql"
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_depth = max_json_depth
        self.path = path  # whose JSON is checked (graph.server.request_body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == self.path:
                try:
                    check_get(scope.get("query_string", b""), self.max_json_depth)
                except BadRequest as refused:
                    await send_json(send, 400, error_body(str(refused), "BAD_REQUEST"))
                    return
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
        body = b"".join(chunks)
        if scope["path"] == self.path:
            refusal = self._refusal(scope, body)
            if refusal is not None:
                await send_json(send, refusal[0], error_body(refusal[1], "BAD_REQUEST"))
                return
        await self.app(scope, replay(body, receive), send)

    def _refusal(self, scope: Scope, body: bytes) -> tuple[int, str] | None:
        """(status, why) when a POST to the GraphQL path cannot be a GraphQL request."""
        content_type = dict(scope["headers"]).get(b"content-type", b"application/json")
        media = content_type.split(b";")[0].strip().lower()
        if media != b"application/json" and not media.endswith(b"+json"):
            return 415, "Send GraphQL requests as application/json."
        try:
            check_post(body, self.max_json_depth)
        except BadRequest as refused:
            return 400, str(refused)
        return None

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
