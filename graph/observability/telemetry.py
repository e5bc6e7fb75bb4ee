"""What each request did, gathered once and reported three ways: a log line, metrics, a span.

``TelemetryMiddleware`` opens a ``RequestRecord`` for each HTTP request (in a context variable,
so that everything the request runs can add to it) and, when the answer is sent, writes one
``lending.request`` log line (request id, operation name and type, actor, outcome, status,
duration, statements run), counts it in the metrics, and ends its trace span. What only the
GraphQL layer knows is added by ``TelemetryExtension`` as an operation ends, by the short path
for the queries it answers, and by ``run_mutation`` (userErrors, replays).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from graph.observability import metrics

log = logging.getLogger("lending.request")

_OUTCOME_BY_STATUS = {401: "unauthenticated", 503: "unavailable"}
# The code of an answer given before GraphQL ran, by its status.
_CODE_BY_STATUS = {
    400: "BAD_REQUEST",
    415: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    413: "REQUEST_TOO_LARGE",
    503: "SERVICE_UNAVAILABLE",
}


@dataclass
class RequestRecord:
    """One HTTP request's facts, filled in as it runs."""

    request_id: str
    path: str
    operation: str | None = None
    type: str | None = None
    actor: str | None = None
    status: int = 0
    statements: int = 0
    compiled: int = 0  # query root fields answered by one statement each
    per_field: int = 0  # query root fields resolved field by field
    errors: list[str] = field(default_factory=list)  # codes of top-level errors
    user_errors: list[str] = field(default_factory=list)  # codes of userErrors
    replays: int = 0
    tracing: Any = None  # graph.observability.tracing.Tracing when traces are on

    @property
    def outcome(self) -> str:
        if self.status in _OUTCOME_BY_STATUS:
            return _OUTCOME_BY_STATUS[self.status]
        if self.status >= 400:
            return "rejected"
        if self.errors:
            return "errors"
        return "user_errors" if self.user_errors else "ok"


def request_id_of(scope: Scope) -> str:
    """The id the server's RequestIdMiddleware gave this request (a fresh one outside it)."""
    state = scope.get("state") or {}
    return str(state.get("request_id") or uuid.uuid4().hex)


CURRENT: ContextVar[RequestRecord | None] = ContextVar("request_record", default=None)


def current() -> RequestRecord | None:
    """The record of the request being served, if any."""
    return CURRENT.get()


def note_user_errors(codes: list[str]) -> None:
    """A mutation answered these userErrors."""
    record = CURRENT.get()
    if record is not None:
        record.user_errors.extend(codes)


def note_error(code: str) -> None:
    """The request was answered this error before GraphQL ran (a persisted-query refusal)."""
    record = CURRENT.get()
    if record is not None:
        record.errors.append(code)


def note_replay() -> None:
    """A mutation was answered from its idempotency key's stored result."""
    record = CURRENT.get()
    if record is not None:
        record.replays += 1


def count_statement(*_: Any) -> None:
    """One SQL statement ran for the current request."""
    record = CURRENT.get()
    if record is not None:
        record.statements += 1


def count_statements_of(engine: AsyncEngine) -> None:
    """Count ``engine``'s statements in the requests that run them."""
    event.listen(engine.sync_engine, "before_cursor_execute", count_statement)


class TelemetryMiddleware:
    """Records each GraphQL request and reports it as it is answered (see the module)."""

    def __init__(
        self, app: ASGIApp, tracing: Any = None, counted: bool = True, path: str = "/graphql"
    ) -> None:
        self.app = app
        self.tracing = tracing
        self.counted = counted  # whether requests are counted in the metrics
        self.path = path
        self.names = metrics.OperationNames()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        record = RequestRecord(request_id=request_id_of(scope), path=scope["path"])
        token = CURRENT.set(record)
        began = time.perf_counter()

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        span = self.tracing.request(scope, record) if self.tracing else None
        try:
            if span is None:
                await self.app(scope, receive, send_status)
            else:
                with span:
                    await self.app(scope, receive, send_status)
        except Exception:
            record.status = record.status or 500
            raise
        finally:
            CURRENT.reset(token)
            self.report(record, time.perf_counter() - began)

    def report(self, record: RequestRecord, seconds: float) -> None:
        """The request's log line and metrics."""
        if not record.errors and record.status in _CODE_BY_STATUS:
            record.errors.append(_CODE_BY_STATUS[record.status])
        if self.counted:
            self.count(record, seconds)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s %s in %.1f ms",
                record.type or "request",
                record.operation or "-",
                record.outcome,
                seconds * 1000,
                extra={
                    "request_id": record.request_id,
                    "operation": record.operation,
                    "type": record.type,
                    "actor": record.actor,
                    "outcome": record.outcome,
                    "status": record.status,
                    "duration_ms": round(seconds * 1000, 2),
                    "statements": record.statements,
                    "errors": record.errors or None,
                    "user_errors": record.user_errors or None,
                },
            )

    def count(self, record: RequestRecord, seconds: float) -> None:
        """The request in the metrics."""
        kind = record.type or "unknown"
        metrics.child(
            metrics.REQUESTS, self.names.label(record.operation), kind, record.outcome
        ).inc()
        metrics.child(metrics.DURATION, kind).observe(seconds)
        metrics.STATEMENTS.inc(record.statements)
        for code in record.errors:
            metrics.child(metrics.ERRORS, code).inc()
        for code in record.user_errors:
            metrics.child(metrics.USER_ERRORS, code).inc()
        if record.replays:
            metrics.REPLAYS.inc(record.replays)
        if record.compiled:
            metrics.child(metrics.ROOT_FIELDS, "compiled").inc(record.compiled)
        if record.per_field:
            metrics.child(metrics.ROOT_FIELDS, "per_field").inc(record.per_field)


class TelemetryExtension(SchemaExtension):
    """Adds what the GraphQL layer knows to the request's record as an operation ends."""

    def on_operation(self) -> Iterator[None]:
        record = CURRENT.get()
        if record is None:  # not an HTTP request (a subscription over WebSocket)
            yield
            return
        with record.tracing.operation(record) if record.tracing else nullcontext():
            yield
            self._note(record)

    def _note(self, record: RequestRecord) -> None:
        context = self.execution_context
        record.operation = context.operation_name
        try:
            record.type = context.operation_type.value
        except Exception:  # a document that did not parse has no type
            record.type = None
        principal = getattr(context.context, "principal", None)
        record.actor = getattr(principal, "name", None)
        result = context.result
        errors = getattr(result, "errors", None) or ()
        record.errors.extend(
            str((getattr(e, "extensions", None) or {}).get("code", "UNKNOWN")) for e in errors
        )
        data = getattr(result, "data", None)
        if record.type == "query" and isinstance(data, dict):
            compiled = len(getattr(getattr(context.context, "reads", None), "compiled_keys", ()))
            record.compiled += compiled
            record.per_field += len(data) - compiled
