"""GraphQL over HTTP, as the specification asks, for every answer on the GraphQL path.

- **Media type.** A client that accepts ``application/graphql-response+json`` gets it. Such a
  client is told a *request error* (the document did not parse or validate, or its variables
  did not coerce: no field ran, so ``data`` is null and no error has a ``path``) by an HTTP 400,
  and the body has no ``data`` entry. A client accepting only ``application/json`` keeps
  getting 200 for those, as the specification requires for that media type.
- **JSON, always.** An error Strawberry answers in plain text ("No GraphQL query found in the
  request", a mutation sent by GET) becomes a JSON body with ``extensions.code`` BAD_REQUEST,
  same status.
- **Cache-Control.** Every answer carries ``private, no-store``: answers depend on the caller's
  key, and no field is declared cacheable.

Only the answers that need a change are held back and rewritten; a usual 200 goes through with
one header added. GraphiQL's page (HTML) is left as it is.
"""

from __future__ import annotations

from typing import Any

import orjson

from graph.server.http import ASGIApp, Message, Receive, Scope, Send

GRAPHQL_RESPONSE = b"application/graphql-response+json"
NO_STORE = (b"cache-control", b"private, no-store")


def is_request_error(body: bytes) -> dict[str, Any] | None:
    """The parsed body when it reports a request error (nothing executed), else None."""
    if not body.startswith(b'{"data":null'):
        return None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    if not errors or any("path" in error for error in errors):
        return None
    return parsed  # type: ignore[no-any-return]


class GraphQLOverHTTPMiddleware:
    """Media type, status codes, JSON errors and Cache-Control on ``path`` (see the module)."""

    def __init__(self, app: ASGIApp, path: str = "/graphql") -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        accept = dict(scope["headers"]).get(b"accept", b"")
        negotiated = GRAPHQL_RESPONSE in accept
        held: Message | None = None

        async def respond(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                held = message
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            start, held = held, None
            if message.get("more_body", False):  # a stream: only the header can change
                await send(_with_headers(start, NO_STORE))
                await send(message)
                return
            start, body = _rewrite(start, message.get("body", b""), negotiated)
            await send(start)
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, respond)


def _rewrite(start: Message, body: bytes, negotiated: bool) -> tuple[Message, bytes]:
    headers = list(start.get("headers", []))
    found = {name.lower(): value for name, value in headers}
    media = found.get(b"content-type", b"").split(b";")[0].strip()
    status = start["status"]
    if media == b"text/html":
        return start, body
    if media == b"text/plain":
        text = body.decode("utf-8", "replace").strip() or "Bad request."
        body = orjson.dumps({"errors": [{"message": text, "extensions": {"code": "BAD_REQUEST"}}]})
        media = b"application/json"
    if negotiated and media == b"application/json":
        media = GRAPHQL_RESPONSE
        if status == 200:
            request_error = is_request_error(body)
            if request_error is not None:
                request_error.pop("data", None)
                status, body = 400, orjson.dumps(request_error)
    replaced = {b"content-type": media, b"content-length": str(len(body)).encode()}
    kept = [(name, value) for name, value in headers if name.lower() not in replaced]
    rewritten = [*kept, *replaced.items()]
    if NO_STORE[0] not in found:
        rewritten.append(NO_STORE)
    return {**start, "status": status, "headers": rewritten}, body


def _with_headers(start: Message, *extra: tuple[bytes, bytes]) -> Message:
    names = {name.lower() for name, _ in start.get("headers", [])}
    added = [(name, value) for name, value in extra if name not in names]
    return {**start, "headers": [*start.get("headers", []), *added]}
