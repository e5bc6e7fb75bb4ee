"""The catalogue as Model Context Protocol tools: streamable HTTP at ``/mcp``, and stdio.

A tool call runs its catalogue operation as a persisted GraphQL request through the app itself
(in-process, every middleware included), with the caller's key: permissions, limits,
idempotency, dry runs and audit are exactly those of GraphQL. The tool's result is the GraphQL
response, as structured content and as JSON text; it is an error result when the response has
errors or userErrors, so an agent sees why and can correct itself.

Over HTTP the key is the request's ``Authorization`` header (a missing or wrong key is refused
with 401 before MCP sees the request); over stdio it is ``LENDING_API_KEY``. Each caller is
listed only the tools its role may use.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import mcp_types as types
import orjson
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError

from db.errors import OUTAGE, unavailable
from graph.agents.catalogue import Catalogue, Operation
from graph.observability.telemetry import request_id_of
from graph.server.http import (
    RETRY_AFTER,
    ASGIApp,
    Receive,
    Scope,
    Send,
    call,
    error_body,
    send_json,
    unavailable_body,
)
from lending.access import Principal, Role

log = logging.getLogger("lending.mcp")

Authenticate = Callable[[str | None], Awaitable[Principal | None]]
Refusal = Callable[[str | None], Awaitable[str]]  # why an Authorization header is refused

INSTRUCTIONS = (
    "Tools of a lending service: apply for loans, decide applications, disburse loans, record "
    "and reverse payments, chase overdue instalments, settle or close loans, and read what is "
    "there. Every change takes dryRun: true to see its exact result without keeping anything; "
    "send an idempotencyKey so that a retry replays the first result instead of acting twice. "
    "A result with userErrors changed nothing: read their code and field, and correct the input."
)


def tool(operation: Operation) -> types.Tool:
    """The MCP description of a catalogue operation."""
    title = operation.name.replace("_", " ").capitalize()
    return types.Tool(
        name=operation.name,
        title=title,
        description=f"{operation.description}\n\n{operation.about}".strip(),
        input_schema=operation.input_schema,
        annotations=types.ToolAnnotations(
            title=title,
            read_only_hint=operation.kind == "query",
            destructive_hint=False,  # nothing is ever deleted; every change is audited
            open_world_hint=False,
        ),
    )


def manifest(
    catalogue: Catalogue, format: Literal["mcp", "openai"], role: Role | None = None
) -> list[dict[str, Any]]:
    """The tools as JSON: MCP tool definitions, or OpenAI function-calling tools."""
    tools = [tool(op) for op in catalogue.tools(role)]
    if format == "mcp":
        return [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools]
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.input_schema,
            },
        }
        for t in tools
    ]


class ToolServer:
    """The MCP server of an app: an ASGI endpoint for ``/mcp``, and a stdio loop."""

    def __init__(
        self, catalogue: Catalogue, app: ASGIApp, authenticate: Authenticate, refusal: Refusal
    ) -> None:
        self.catalogue = catalogue
        self.app = app
        self.authenticate = authenticate
        self.refusal = refusal
        self.stdio_authorization: str | None = None
        self.server: Server[Any] = Server(
            "lending",
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            get_tool_input_schema=self._input_schema,
        )
        # Stateless and answered as JSON: every call stands alone, like a GraphQL request.
        self.http = StreamableHTTPSessionManager(self.server, stateless=True, json_response=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ``/mcp`` endpoint: refuses a missing or wrong key, then serves MCP."""
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        try:
            principal = await self.authenticate(authorization)
        except Exception as error:
            reason = unavailable(error)
            if reason is None:
                raise
            OUTAGE.noticed(reason)
            rid = request_id_of(scope)
            await send_json(send, 503, unavailable_body(reason, rid), {"retry-after": RETRY_AFTER})
            return
        if principal is None:
            await send_json(
                send,
                401,
                error_body(await self.refusal(authorization), "UNAUTHENTICATED"),
                {"www-authenticate": "Bearer"},
            )
            return
        await self.http.handle_request(scope, receive, send)

    async def run_stdio(self, key: str) -> None:
        """Serve MCP on stdin/stdout, acting with ``key``."""
        self.stdio_authorization = f"Bearer {key}"
        async with stdio_server() as (read, write):
            await self.server.run(read, write, self.server.create_initialization_options())

    # ---- handlers --------------------------------------------------------------------------

    def _authorization(self, ctx: Any) -> str | None:
        request = getattr(ctx, "request", None)
        if request is not None:
            return str(request.headers.get("authorization", "")) or None
        return self.stdio_authorization

    async def _principal(self, ctx: Any) -> Principal:
        authorization = self._authorization(ctx)
        try:
            principal = await self.authenticate(authorization)
        except Exception as error:
            reason = unavailable(error)
            if reason is None:
                raise
            OUTAGE.noticed(reason)
            raise MCPError(
                types.INTERNAL_ERROR,
                "The database is unavailable; retry in a second.",
                {"code": "SERVICE_UNAVAILABLE", "retryable": True},
            ) from error
        if principal is None:
            reason = await self.refusal(authorization)
            raise MCPError(types.INVALID_REQUEST, reason, {"code": "UNAUTHENTICATED"})
        return principal

    async def _list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        principal = await self._principal(ctx)
        return types.ListToolsResult(
            tools=[tool(op) for op in self.catalogue.tools(principal.role)]
        )

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        operation = self.catalogue.by_name.get(name)
        return operation.input_schema if operation and operation.is_tool else None

    async def _call_tool(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        await self._principal(ctx)
        operation = self.catalogue.by_name.get(params.name)
        if operation is None or not operation.is_tool:
            raise MCPError(types.INVALID_PARAMS, f"There is no tool {params.name!r}.")
        # A tool the role may not use is not listed; called anyway, GraphQL refuses it (FORBIDDEN).
        unknown = sorted(set(params.arguments or {}) - set(operation.input_schema["properties"]))
        if unknown:
            # GraphQL ignores variables an operation does not declare; a tool says so instead.
            takes = ", ".join(operation.input_schema["properties"])
            return _result(
                error_body(
                    f"Unknown arguments {', '.join(unknown)}; {operation.name} takes {takes}.",
                    "BAD_USER_INPUT",
                ),
                is_error=True,
            )
        # The tool call's GraphQL request carries the MCP request's id (one id in the logs).
        request = getattr(ctx, "request", None)
        rid = request_id_of(request.scope) if request is not None else uuid.uuid4().hex
        headers = {
            "authorization": self._authorization(ctx) or "",
            "content-type": "application/json",
            "accept": "application/json",
            "x-request-id": rid,
        }
        status, body = await call(
            self.app, "/graphql", headers, orjson.dumps(operation.request(params.arguments))
        )
        try:
            response = orjson.loads(body)
        except orjson.JSONDecodeError:
            log.warning("tool %s: HTTP %s without a JSON body", operation.name, status)
            response = error_body("The service failed to answer.", "INTERNAL_SERVER_ERROR")
        if not isinstance(response, dict):
            response = error_body("The service failed to answer.", "INTERNAL_SERVER_ERROR")
        failed = status != 200 or bool(response.get("errors")) or _has_user_errors(response)
        return _result(response, is_error=failed)


def _result(response: dict[str, Any], *, is_error: bool) -> types.CallToolResult:
    """A tool result holding a GraphQL response, as structured content and as JSON text."""
    return types.CallToolResult(
        content=[types.TextContent(text=orjson.dumps(response).decode())],
        structured_content=response,
        is_error=is_error,
    )


def _has_user_errors(response: dict[str, Any]) -> bool:
    data = response.get("data")
    if not isinstance(data, dict):
        return False
    return any(isinstance(p, dict) and p.get("userErrors") for p in data.values())
