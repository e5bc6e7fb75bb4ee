"""The short path: a request for a known document answered without the framework's layers.

An HTTP request costs a fixed ~1.5 ms in FastAPI's routing and dependency injection and in
Strawberry's HTTP view before any field is resolved. This ASGI middleware answers a request
itself when everything it needs is already known:

- a ``POST`` with a JSON body holding ``query`` (and optionally ``variables``,
  ``operationName``), as every GraphQL client sends, from a caller who does not accept a
  multipart answer (the router decides whether to stream one);
- the caller's principal, cached by a previous request (graph.server.principals);
- the document, parsed, validated and executed before by the full path (graph.compiled.executor
  keeps it).

Then:

- **A query** whose every root field compiles is answered whole by one statement, without the
  GraphQL executor: when the plan of this operation for this role is made, the variables
  coerce, the cost is within the limit, the arguments pass their checks, and the caller's budget
  (graph.budgets) can pay for it. Anything else goes down the full path unchanged.
- **A mutation** is executed by the schema as the router would execute it, with the context the
  router's dependency would make, and answered with the router's own response (``mutate``,
  graph.server.app): the same extensions, limits, budgets, error masking, compiled payloads
  and status codes (503, 429), without the framework's ~1 ms per request.

The answer is the same bytes the full path writes (the differential tests send every request
both ways). Anything else — a first sighting, a bad cursor, a key never seen, an unusual
request, a database error on a query — goes down the full path unchanged, which then answers
or reports the problem the usual way. A database that cannot serve a query is answered 503 at
once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import OperationType, get_operation_ast
from graphql.execution.values import get_variable_values

from db.errors import OUTAGE, unavailable
from graph.budgets import CostBudgets, cost_report
from graph.compiled.executor import CachedDocument, CompiledReads
from graph.inputs import unstorable_field
from graph.limits import query_cost
from graph.observability import telemetry
from graph.observability.telemetry import request_id_of
from graph.server.http import (
    RETRY_AFTER,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    send_json,
    unavailable_body,
)
from graph.server.principals import PrincipalCache
from lending.access import Principal

log = logging.getLogger("lending.compiled")


MAX_BODY = 1 << 20  # a larger request is left to the full path
MAX_COSTS = 64  # remembered per document
_KEYS = frozenset({"query", "variables", "operationName"})


@dataclass(frozen=True)
class KnownRequest:
    """A request for a document executed before: what the router would read from its body."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


# The router's answer to a mutation (principal, request id, request): a response to send.
Mutate = Callable[[Principal, str, KnownRequest], Awaitable[ASGIApp]]


class ShortPathMiddleware:
    """Answers fully compiled queries, and mutations of known documents, directly; passes
    every other request on untouched."""

    def __init__(
        self,
        app: ASGIApp,
        compiled: CompiledReads,
        principals: PrincipalCache,
        cost_limit: int,
        budgets: CostBudgets,
        path: str = "/graphql",
        mutate: Mutate | None = None,
    ) -> None:
        self.app = app
        self.mutate = mutate
        self.compiled = compiled
        self.principals = principals
        self.budgets = budgets
        self.cost_limit = cost_limit
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != self.path
            or not self.compiled.enabled
        ):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if not headers.get("content-type", "").startswith("application/json"):
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive)
        if complete and await self._answer(scope, receive, headers, body, send):
            return
        await self.app(scope, _replay(body, complete, receive), send)

    async def _answer(
        self, scope: Scope, receive: Receive, headers: dict[str, str], body: bytes, send: Send
    ) -> bool:
        rid = request_id_of(scope)
        principal = self.principals.cached(headers.get("authorization"))
        if principal is None or _streamed(headers):
            return False
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(request, dict) or not request.keys() <= _KEYS:
            return False
        query, raw, operation_name = (
            request.get("query"),
            request.get("variables") or {},
            request.get("operationName"),
        )
        if not isinstance(query, str) or not isinstance(raw, dict):
            return False
        if operation_name is not None and not isinstance(operation_name, str):
            return False
        entry = self.compiled.lookup(query)
        if entry is None:
            return False
        operation = get_operation_ast(entry.document, operation_name)
        if operation is None or entry.unstorable_literal or unstorable_field(raw) is not None:
            return False  # refused by the full path
        if operation.operation is OperationType.MUTATION and self.mutate is not None:
            known = KnownRequest(query, request.get("variables"), operation_name)
            response = await self.mutate(principal, rid, known)
            await response(scope, receive, send)
            self.compiled.answered["mutation"] += 1
            return True
        if operation.operation is not OperationType.QUERY:
            return False
        schema = self.compiled.schema._schema
        variables = get_variable_values(schema, operation.variable_definitions or (), raw)
        if isinstance(variables, list):
            return False
        plan = entry.plans.get(entry.plan_key(operation, principal.role, variables))
        if plan is None or not plan.complete:
            return False
        cost = _cost(entry, schema, operation_name, raw)
        if cost > self.cost_limit:
            return False
        bound = self.compiled.bind(plan, tuple(plan.slots), variables, principal)
        if bound is None:
            return False
        charge = self.budgets.charge(principal, cost)
        if not charge.paid:
            return False  # the full path answers 429, in the one way it does
        try:
            data = await self.compiled.run_data(plan, bound)
        except Exception as error:
            reason = unavailable(error)
            if reason is None:
                log.warning("compiled read failed; answering on the full path", exc_info=True)
                self.budgets.refund(principal, charge.cost)  # the full path charges it
                return False
            OUTAGE.noticed(reason)
            await send_json(send, 503, unavailable_body(reason, rid), {"retry-after": RETRY_AFTER})
            return True
        extensions = orjson.dumps(
            {"cost": cost_report(cost, self.cost_limit, charge), "compiled": plan.reading}
        )
        payload = b'{"data":' + data + b',"extensions":' + extensions + b"}"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(payload)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        self.compiled.answered["whole"] += 1
        record = telemetry.current()
        if record is not None:
            record.operation = operation.name.value if operation.name else None
            record.type, record.actor, record.compiled = "query", principal.name, len(plan.reading)
        return True


def _cost(
    entry: CachedDocument, schema: Any, operation_name: str | None, raw: dict[str, Any]
) -> int:
    """The operation's cost, remembered by the values of the variables it depends on."""
    key = orjson.dumps([[name in raw, raw.get(name)] for name in entry.cost_variables])
    cost = entry.costs.get(key)
    if cost is None:
        cost = query_cost(schema, entry.document, operation_name, raw)
        if len(entry.costs) < MAX_COSTS:
            entry.costs[key] = cost
    return cost


def _streamed(headers: dict[str, str]) -> bool:
    """Whether the caller accepts an answer as a multipart stream: the router decides then
    whether to stream it (graph.server.app.MultipartSubscriptions)."""
    return "multipart/mixed" in headers.get("accept", "").lower()


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, and whether it was read to its end (small bodies only)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > MAX_BODY:
            return b"".join(chunks), False


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A receive that hands the full path the body read so far, then the rest as it comes."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return replay
