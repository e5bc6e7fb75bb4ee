"""Persisted operations: a catalogue document sent by its sha256 instead of its text.

A request names the document either as ``"documentId": "sha256:<hex>"`` (the GraphQL over HTTP
persisted documents form) or as ``"extensions": {"persistedQuery": {"version": 1, "sha256Hash":
"<hex>"}}`` (what Apollo clients send), in a POST body or in the query string of a GET. This
ASGI middleware puts the document's text in its place, so everything after it (the short path
included) sees an ordinary request. A hash sent with a text it does not match is
PERSISTED_QUERY_HASH_MISMATCH (400).

Besides the catalogue, any document is *registered* the way Apollo's automatic persisted
queries work: a client sends the hash alone; an unknown one is answered (HTTP 200) the error
``PersistedQueryNotFound`` with code PERSISTED_QUERY_NOT_FOUND, which Apollo's and Relay's
links take as "send the text"; the client sends text and hash together, the hash is checked
and the text remembered, and from then on the hash alone runs it. Each server process
remembers up to ``REGISTERED`` documents (least recently used forgotten; a forgotten or
elsewhere-registered one costs the client one more round trip, nothing else).

With ``PERSISTED_OPERATIONS_ONLY=on``, a validation rule refuses every document that is not a
catalogue one (PERSISTED_OPERATION_REQUIRED), whichever transport brought it: a leaked key then
runs only the operations the catalogue holds.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from graphql import ASTValidationRule, DocumentNode, GraphQLError

from graph.agents.catalogue import Catalogue, catalogue, digest
from graph.observability import telemetry
from graph.server.http import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    error_body,
    replay,
    send_json,
)

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
REQUIRED = "PERSISTED_OPERATION_REQUIRED"


class Refused(Exception):
    """A persisted-operation reference that cannot be served."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


REGISTERED = 1000  # documents a process remembers
REGISTERED_MAX_CHARS = 100_000  # longer ones run, but are not remembered
REGISTERED_MAX_BYTES = 4 << 20  # characters of all the documents a process remembers


class Registered:
    """Documents registered by their hash, within ``size`` documents and ``max_chars`` in
    all: when full, the largest are forgotten first (a flood of large documents cannot push
    out everyone's small ones), then the least recently used."""

    def __init__(self, size: int = REGISTERED, max_chars: int = REGISTERED_MAX_BYTES) -> None:
        self.size = size
        self.max_chars = max_chars
        self.chars = 0
        self._documents: OrderedDict[str, str] = OrderedDict()

    def document(self, sha256: str) -> str | None:
        text = self._documents.get(sha256)
        if text is not None:
            self._documents.move_to_end(sha256)
        return text

    def register(self, sha256: str, text: str) -> None:
        if len(text) > REGISTERED_MAX_CHARS or sha256 in self._documents:
            return
        self._documents[sha256] = text
        self.chars += len(text)
        while self.chars > self.max_chars:
            largest = max(self._documents, key=lambda known: len(self._documents[known]))
            self.chars -= len(self._documents.pop(largest))
        while len(self._documents) > self.size:
            self.chars -= len(self._documents.popitem(last=False)[1])

    def __len__(self) -> int:
        return len(self._documents)


def resolve(
    request: dict[str, Any], known: Catalogue, registered: Registered | None = None
) -> dict[str, Any]:
    """``request`` with the text of the document it names by hash (unchanged if it names
    none). A text sent with its hash is not registered here: ``registering`` says which, and
    the middleware registers it once the request was answered (a key's, valid document)."""
    extensions = request.get("extensions")
    if not isinstance(extensions, dict):
        extensions = {}
    persisted = extensions.get("persistedQuery")
    reference = request.get("documentId")
    if reference is None and isinstance(persisted, dict):
        reference = persisted.get("sha256Hash")
    if reference is None:
        return request
    if not isinstance(reference, str):
        raise Refused(400, "documentId must be a string: sha256:<hex>.", "BAD_USER_INPUT")
    wanted = reference.removeprefix("sha256:").lower()
    text = request.get("query")
    if isinstance(text, str):
        if digest(text) != wanted:
            raise Refused(400, "The query's sha256 is not the hash sent with it.", MISMATCH)
    else:
        text = known.document(wanted)
        if text is None and registered is not None:
            text = registered.document(wanted)
        if text is None:
            # The exact message Apollo's link looks for, besides the code.
            raise Refused(200, "PersistedQueryNotFound", NOT_FOUND)
    # What remains is an ordinary request (one the short path may answer).
    resolved = {k: v for k, v in request.items() if k not in ("documentId", "extensions")}
    resolved["query"] = text
    others = {k: v for k, v in extensions.items() if k != "persistedQuery"}
    if others:
        resolved["extensions"] = others
    return resolved


Registering = tuple[str, str] | None  # (sha256, text) to register once the request ran


class PersistedOperationsMiddleware:
    """Replaces a catalogue document's hash by its text on requests to ``path``."""

    def __init__(self, app: ASGIApp, known: Catalogue, path: str = "/graphql") -> None:
        self.app = app
        self.known = known
        self.registered = Registered()
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        registering: Registering = None
        try:
            if scope["method"] == "GET":
                scope, registering = self._get(scope)
            elif scope["method"] == "POST":
                scope, receive, registering = await self._post(scope, receive)
        except Refused as refused:
            telemetry.note_error(refused.code)
            await send_json(send, refused.status, error_body(refused.message, refused.code))
            return
        if registering is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, self._registers(send, *registering))

    def _registers(self, send: Send, sha256: str, text: str) -> Send:
        """``send``, registering ``text`` if the answer shows the document ran: a 200 holding
        data, in one piece (not refused for want of a key, nor as invalid)."""
        status = 0

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif (
                status == 200
                and not message.get("more_body", False)
                and message.get("body", b"").startswith(b'{"data":{')
            ):
                self.registered.register(sha256, text)
            await send(message)

        return answer

    def _registering(self, request: dict[str, Any], resolved: dict[str, Any]) -> Registering:
        """A text sent with its hash, to register once it has run."""
        text = request.get("query")
        if isinstance(text, str) and resolved is not request:
            wanted = digest(text)
            if self.known.document(wanted) is None:
                return wanted, text
        return None

    def _get(self, scope: Scope) -> tuple[Scope, Registering]:
        params = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        if "documentId" not in params and "persistedQuery" not in params.get("extensions", ""):
            return scope, None
        request: dict[str, Any] = dict(params)
        if "extensions" in params:
            try:
                request["extensions"] = orjson.loads(params["extensions"])
            except orjson.JSONDecodeError:
                return scope, None  # left for the GraphQL layer to report
        resolved = resolve(request, self.known, self.registered)
        params = {k: v for k, v in params.items() if k != "documentId"}
        params["query"] = resolved["query"]
        scope = {**scope, "query_string": urlencode(params).encode()}
        return scope, self._registering(request, resolved)

    async def _post(self, scope: Scope, receive: Receive) -> tuple[Scope, Receive, Registering]:
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        if not content_type.startswith(b"application/json"):
            return scope, receive, None
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return scope, replay(b"".join(chunks), receive), None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        registering: Registering = None
        if b"documentId" in body or b"persistedQuery" in body:
            try:
                request = orjson.loads(body)
            except orjson.JSONDecodeError:
                request = None  # left for the GraphQL layer to report
            if isinstance(request, dict):
                resolved = resolve(request, self.known, self.registered)
                registering = self._registering(request, resolved)
                if resolved is not request:
                    body = orjson.dumps(resolved)
                    headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
                    headers.append((b"content-length", str(len(body)).encode()))
                    scope = {**scope, "headers": headers}
        return scope, replay(body, receive), registering


class CatalogueOnly(ASTValidationRule):
    """Refuses any document that is not one of the catalogue's (PERSISTED_OPERATIONS_ONLY).

    A validation rule, so that every transport reports it the same way, as a request error;
    the document is compared as parsed, so its layout does not matter, only what it asks.
    """

    def enter_document(self, node: DocumentNode, *_: Any) -> Any:
        if not catalogue(self.context.schema).holds(node):  # type: ignore[attr-defined]
            self.report_error(
                GraphQLError(
                    "Only the service's catalogue operations may run here: send one by its "
                    'hash ("documentId": "sha256:<hex>") or as its text.',
                    extensions={"code": REQUIRED},
                )
            )
        return self.BREAK
