"""The FastAPI application: GraphQL at /graphql, MCP tools at /mcp, health checks, request ids."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from cross_web import HTTPException
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.fastapi import GraphQLRouter
from strawberry.http import process_result
from strawberry.http.parse_content_type import parse_content_type
from strawberry.http.streaming import MultipartSubscriptionTransport
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import (
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types.graphql import OperationType

from db.errors import OUTAGE, unavailable
from db.listener import EventListener
from db.migrate import current_revision, head_revision
from db.reads.pool import ReadPool
from db.replica import Replica
from db.session import RequestSession, create_engine, create_sessionmaker, pool_usage
from graph.agents.catalogue import catalogue
from graph.agents.mcp_server import ToolServer
from graph.agents.persisted import CatalogueOnly, PersistedOperationsMiddleware
from graph.budgets import CostBudgets, KeyShares, throttled_error
from graph.compiled.executor import CompiledReads, RequestReads
from graph.compiled.short_path import KnownRequest, ShortPathMiddleware
from graph.context import Context
from graph.observability import logs, metrics, telemetry
from graph.observability.telemetry import TelemetryMiddleware
from graph.observability.tracing import Tracing
from graph.observability.tracing import from_settings as tracing_from
from graph.schema import LendingSchema, build_schema
from graph.server import dashboard
from graph.server.http import (
    RETRY_AFTER,
    BodyLimitMiddleware,
    RequestIdMiddleware,
    ServiceUnavailable,
    error_body,
    unavailable_body,
    unavailable_errors,
)
from graph.server.ide import GraphiQLRouter
from graph.server.over_http import GraphQLOverHTTPMiddleware
from graph.server.principals import PrincipalCache
from graph.server.settings import Settings
from graph.server.shares import KeyShareMiddleware
from graph.server.tokens import SigningKeys, TokenVerifier
from lending.access import Budget, Principal, Role, demo_key
from lending.services import api_keys as key_service

log = logging.getLogger("lending.app")


NEEDS_A_STREAM = (
    "Subscriptions need a WebSocket (graphql-transport-ws) or multipart/mixed: send "
    '`Accept: multipart/mixed;subscriptionSpec="1.0"` to receive the events over HTTP.'
)
MAX_ACCEPT_RANGES = 20  # media ranges of an Accept header looked at


class TextFrames(ASGIWebSocketAdapter):
    """Every WebSocket message as a text frame, as the GraphQL over WebSocket protocols say
    (the router's JSON is bytes, which Strawberry would send as binary frames)."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except (WebSocketDisconnect, WebSocketDisconnected):
            # The client has gone, or the connection is already closed (its close frame sent):
            # there is nobody to tell, and the connection's reader ends its operations as it
            # sees the close. (Raised, an operation's answer to a client that left at once was
            # logged as a fault with its traceback.)
            return


class MultipartSubscriptions(MultipartSubscriptionTransport):
    """Apollo's multipart subscription protocol, for an Accept header naming it anywhere in its
    list (``application/json, multipart/mixed;subscriptionSpec=1.0`` too); an operation that
    is not a subscription is answered in one part."""

    def accepts(self, accept: str) -> bool:
        ranges = accept.split(",", MAX_ACCEPT_RANGES)[:MAX_ACCEPT_RANGES]
        return any(
            self.accepts_content_type(*parse_content_type(media.strip()))
            for media in ranges
            if media.strip().lower().startswith("multipart/mixed")
        )

    def allowed_operation_types(
        self, allowed_operation_types: set[OperationType]
    ) -> Iterable[OperationType]:
        return allowed_operation_types


class JSONRouter(GraphiQLRouter):
    """Strawberry's router, writing responses with orjson (which embeds compiled fragments).

    A result the database could not serve is HTTP 503 with Retry-After, its body only the
    retryable SERVICE_UNAVAILABLE error: there is nothing partial a client should keep.
    Subscriptions run over a WebSocket (text frames) or as a multipart/mixed HTTP stream; one
    sent over plain HTTP is a 400 saying so.
    """

    websocket_adapter_class = TextFrames
    stream_transport_classes_by_protocol = {  # noqa: RUF012 - read by Strawberry per class
        MULTIPART_SUBSCRIPTION_PROTOCOL: MultipartSubscriptions
    }

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def execute_single(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as error:
            cause = error.__cause__
            if (
                isinstance(cause, InvalidOperationTypeError)
                and cause.operation_type is OperationType.SUBSCRIPTION
            ):
                raise HTTPException(400, NEEDS_A_STREAM) from None
            raise

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        found = response_data.get("errors") if isinstance(response_data, dict) else None
        errors = unavailable_errors(found)
        if errors:
            return Response(
                orjson.dumps({"errors": errors[:1]}),
                status_code=503,
                media_type="application/json",
                headers={"Retry-After": RETRY_AFTER},
            )
        throttled = throttled_error(found)
        if throttled is not None:
            return Response(
                orjson.dumps(response_data),
                status_code=429,
                media_type="application/json",
                headers={"Retry-After": str(throttled["extensions"]["retryAfter"])},
            )
        return super().create_response(response_data, sub_response)


def _sub_response() -> Response:
    """An empty response whose status and headers a resolver may set, as FastAPI hands the
    router one: no status of its own, no content-length."""
    made = Response()
    del made.headers["content-length"]
    made.status_code = None  # type: ignore[assignment]
    return made


class Unauthenticated(Exception):
    """No valid API key or token on an HTTP request; the message says why."""


def _is_ide_page(connection: HTTPConnection) -> bool:
    """A browser asking for GraphiQL itself (its queries then carry the key)."""
    return (
        connection.scope.get("method") == "GET"
        and "text/html" in connection.headers.get("accept", "")
        and "query" not in connection.query_params
    )


async def refuse_unsafe_production(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """In production, refuse to start while demo keys can open the door."""
    if not settings.production:
        return
    async with sessionmaker() as session:
        if await key_service.demo_keys_present(session):
            raise RuntimeError(
                "LENDING_ENV=production but demo API keys are present: revoke them "
                "(lending api-key revoke demo-admin …) before starting."
            )


def create_app(
    settings: Settings,
    database_url: str,
    schema: LendingSchema | None = None,
    tracing: Tracing | None = None,
) -> FastAPI:
    """The service bound to ``database_url``; the engine lives as long as the app.

    With ``settings.database_replica_url``, queries read from that replica while it keeps up
    (db.replica); everything else uses ``database_url``. ``schema`` (built from ``settings``
    by default) may be shared by apps, with its parser and validation caches: the tests run
    one document through two apps that way. ``tracing`` (made from the settings by default:
    none unless an OTLP endpoint is set) is for tests.
    """
    engine: AsyncEngine = create_engine(
        database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        statement_timeout=settings.db_statement_timeout,
        lock_timeout=settings.db_lock_timeout,
        pooled=settings.pooled,
    )
    sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
    head = head_revision()
    listen_url = settings.direct_url(database_url)  # LISTEN cannot go through a pooler
    events = EventListener(listen_url)
    schema = schema or build_schema(
        settings, [CatalogueOnly] if settings.persisted_operations_only else []
    )
    read_pool = ReadPool(
        database_url,
        settings.db_pool_size,
        timeout=settings.db_pool_timeout,
        statement_timeout=settings.db_statement_timeout,
        pooled=settings.pooled,
    )
    replica = (
        Replica(
            settings.database_replica_url,
            listen_url,  # where the primary's WAL position is asked
            max_lag_ms=settings.replica_max_lag_ms,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            statement_timeout=settings.db_statement_timeout,
        )
        if settings.database_replica_url
        else None
    )
    compiled = CompiledReads(schema, read_pool, enabled=settings.compiled_reads, replica=replica)
    budgets = CostBudgets()
    operations = catalogue(schema._schema)
    tracing = tracing or tracing_from(settings)
    # With no metrics, no request log line and no traces, requests are not recorded at all.
    observed = settings.metrics or tracing is not None or telemetry.log.isEnabledFor(logging.INFO)
    # Statements are counted and traced wherever they run: on the primary, on the replica.
    connections = [(engine, read_pool)]
    if replica is not None:
        connections.append((replica.engine, replica.pool))
    for orm_engine, pool in connections:
        if observed:
            telemetry.count_statements_of(orm_engine)
            pool.observers.append(telemetry.count_statement)
        if tracing is not None:
            tracing.instrument(orm_engine, pool)

    def pool_usage_now() -> dict[tuple[str, str], float]:
        pools = {"orm": pool_usage(engine), "read": read_pool.usage()}
        if replica is not None:
            pools |= {f"replica_{name}": usage for name, usage in replica.usage().items()}
        return {
            (pool, state): value for pool, usage in pools.items() for state, value in usage.items()
        }

    sampler = metrics.Sampler(pool_usage_now, replica)
    drain = asyncio.Event()  # SIGTERM arrived: /readyz fails while requests are still served

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await refuse_unsafe_production(settings, sessionmaker)
        if replica is not None:
            await replica.start()
        restore = on_shutdown_signal(events.closing, settings.shutdown_drain, drain.set)
        try:
            async with tools.http.run(), metrics.sampling(sampler):
                yield
        finally:
            restore()
        if tracing is not None:
            tracing.shutdown()
        await events.close()
        await principals.close()
        if replica is not None:
            await replica.close()
        await compiled.pool.close()
        await engine.dispose()

    async def lookup_key(authorization: str | None) -> Principal | None:
        async with sessionmaker() as session:
            return await key_service.authenticate(session, authorization)

    tokens = None
    if settings.jwt_jwks and settings.jwt_issuer and settings.jwt_audience:
        tokens = TokenVerifier(
            SigningKeys(settings.jwt_jwks),
            settings.jwt_issuer,
            settings.jwt_audience,
            settings.jwt_role_claim,
            settings.jwt_leeway_s,
            Budget.parse(settings.borrower_budget) if settings.borrower_budget else None,
        )
    principals = PrincipalCache(listen_url, lookup_key, tokens)
    shares = KeyShares(settings.key_share, settings.key_queue_wait_s)
    authenticate = principals.authenticate

    def new_context(principal: Principal | None, request_id: str, over_websocket: bool) -> Context:
        # Queries of HTTP requests may read from the replica (graph.context decides which are
        # queries); a WebSocket's subscriptions read from the primary, as the events come.
        db = RequestSession(sessionmaker, None if over_websocket else replica)
        reads = RequestReads(compiled, principal) if principal and compiled.enabled else None
        return Context(
            request_id=request_id,
            sessionmaker=sessionmaker,
            db=db,
            authenticate=authenticate,
            refusal=principals.refusal,
            events=events,
            principal=principal,
            reads=reads,
            compiled=compiled if compiled.enabled else None,
            over_websocket=over_websocket,
            budgets=budgets,
            shares=shares,
        )

    async def close(made: Context) -> None:
        try:
            await made.end_dry_run()
        finally:
            await made.db.close()

    async def context(connection: HTTPConnection) -> AsyncIterator[Context]:
        principal = None
        if connection.scope["type"] == "http" and not _is_ide_page(connection):
            try:
                authorization = connection.headers.get("authorization")
                principal = await authenticate(authorization)
            except Exception as error:
                reason = unavailable(error)
                if reason is None:
                    raise
                raise ServiceUnavailable(reason) from error
            if principal is None:
                raise Unauthenticated(await principals.refusal(authorization))
        made = new_context(
            principal,
            getattr(connection.state, "request_id", None) or uuid.uuid4().hex,
            connection.scope["type"] == "websocket",
        )
        try:
            yield made
        finally:
            await close(made)

    async def mutate(principal: Principal, request_id: str, request: KnownRequest) -> Response:
        """A mutation of a known document, as the router would answer it (the short path)."""
        made = new_context(principal, request_id, False)
        try:
            result = await schema.execute(
                request.query,
                variable_values=request.variables,
                context_value=made,
                operation_name=request.operation_name,
                allowed_operation_types={OperationType.MUTATION},
            )
            return router.create_response(process_result(result), _sub_response())
        finally:
            await close(made)

    app = FastAPI(
        title="Lending GraphQL API",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.engine = engine
    app.state.compiled = compiled
    app.state.replica = replica
    app.state.schema = schema
    app.state.principals = principals
    app.state.shares = shares

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(request: Request, error: Unauthenticated) -> JSONResponse:
        return JSONResponse(
            error_body(str(error), "UNAUTHENTICATED"),
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(ServiceUnavailable)
    async def service_unavailable(request: Request, error: ServiceUnavailable) -> JSONResponse:
        OUTAGE.noticed(error.reason)
        return _unavailable_response(error.reason, request.state.request_id)

    app.state.sessionmaker = sessionmaker

    # A fully compiled query, or a mutation of a document executed before, is answered here,
    # before the framework's layers.
    app.add_middleware(
        ShortPathMiddleware,
        compiled=compiled,
        principals=principals,
        cost_limit=settings.max_query_cost,
        budgets=budgets,
        mutate=mutate,
    )
    # A catalogue document sent by its hash is an ordinary request from here on.
    app.add_middleware(PersistedOperationsMiddleware, known=operations)
    # No key has more than its share of requests at work; a body is read whole before.
    app.add_middleware(KeyShareMiddleware, shares=shares)
    # Nothing reads a body before its size is known to be acceptable.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        max_json_depth=settings.max_json_depth,
    )
    # Media type, status codes, JSON errors and Cache-Control of every GraphQL answer.
    app.add_middleware(GraphQLOverHTTPMiddleware)
    # Every GraphQL request, whoever answers it, is logged, counted and traced once.
    if observed:
        app.add_middleware(TelemetryMiddleware, tracing=tracing, counted=settings.metrics)
    app.add_middleware(RequestIdMiddleware)
    if settings.gzip_min_bytes > 0:
        # Never a stream of events: gzip would hold each one back until the next filled a block.
        app.add_middleware(
            GZipMiddleware,
            minimum_size=settings.gzip_min_bytes,
            compresslevel=5,
            exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, "multipart/mixed"),
        )
    if settings.cors_origin_list:
        # Outermost, so that every answer a browser may read (401, 413, 503 included) says so.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )

    router: GraphQLRouter[Any, None] = JSONRouter(
        schema,
        context_getter=context,
        graphql_ide="graphiql" if settings.graphiql_enabled else None,
        graphiql_assets=settings.graphiql_assets,
        # The demo's keys are public; anywhere else GraphiQL asks for one.
        ide_headers={"Authorization": f"Bearer {demo_key(Role.ADMIN)}"}
        if settings.lending_demo
        else None,
        subscription_protocols=(
            GRAPHQL_TRANSPORT_WS_PROTOCOL,
            GRAPHQL_WS_PROTOCOL,
            MULTIPART_SUBSCRIPTION_PROTOCOL,
        ),
    )
    app.include_router(router, prefix="/graphql")
    if settings.lending_demo:
        dashboard.mount(app, settings.graphiql_assets)
    tools = ToolServer(operations, app, authenticate, principals.refusal)
    app.state.tools = tools
    # An ASGI app as the endpoint: Starlette hands it the raw request.
    app.add_route("/mcp", tools, methods=["GET", "POST", "DELETE"])  # type: ignore[arg-type]

    if settings.metrics:
        app.add_route(
            "/metrics", metrics.endpoint(sampler, settings.metrics_token), methods=["GET"]
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready: the database answers at the code's migration, and the process is not draining
        (SHUTDOWN_DRAIN). The answer says only that (the why of an unready process is logged;
        the replica's state is in /metrics)."""
        if drain.is_set():
            return JSONResponse({"status": "draining"}, 503, headers={"Retry-After": RETRY_AFTER})
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                revision = await current_revision(connection)
        except Exception as exc:
            reason = unavailable(exc)
            if reason is None:
                log.warning("readiness check failed: %s", exc)
            else:
                OUTAGE.noticed(reason)
            return JSONResponse(
                {"status": "unavailable"}, 503, headers={"Retry-After": RETRY_AFTER}
            )
        if revision != head:
            log.warning(
                "not ready: the database is at migration %s, the code at %s", revision, head
            )
            return JSONResponse({"status": "unavailable"}, 503)
        return JSONResponse({"status": "ok"})

    return app


def _unavailable_response(reason: str, request_id: str) -> JSONResponse:
    return JSONResponse(
        unavailable_body(reason, request_id), 503, headers={"Retry-After": RETRY_AFTER}
    )


def on_shutdown_signal(
    callback: Callable[[], None],
    drain: float = 0.0,
    draining: Callable[[], None] = lambda: None,
) -> Callable[[], None]:
    """Run ``callback`` in the event loop as soon as SIGTERM or SIGINT arrives, then let the
    handler already in place (the server's graceful shutdown) do its work; returns what puts
    the handlers back. Event streams over HTTP end cleanly this way, where the server would
    otherwise wait for them until its shutdown timeout and then cut them off.

    With a ``drain``, SIGTERM first calls ``draining`` and both wait that many seconds, the
    server serving on meanwhile (a second signal, or SIGINT, does not wait)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[signal.Signals, Any] = {}
    drained = False  # a SIGTERM has begun a drain

    def chain(handler: Callable[[int, Any], Any]) -> Callable[[int, Any], None]:
        def stop(number: int, frame: Any) -> None:
            callback()
            handler(number, frame)

        def handle(number: int, frame: Any) -> None:
            nonlocal drained
            if number == signal.SIGTERM and drain > 0 and not drained:
                drained = True
                loop.call_soon_threadsafe(draining)
                loop.call_soon_threadsafe(loop.call_later, drain, stop, number, frame)
                return
            loop.call_soon_threadsafe(callback)
            handler(number, frame)

        return handle

    for number in (signal.SIGTERM, signal.SIGINT):
        handler = signal.getsignal(number)
        if callable(handler):  # a server's handler: without one, the default ends the process
            previous[number] = handler
            signal.signal(number, chain(handler))

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    return restore


def tune_interpreter() -> None:
    """Collector and thread settings for a server process, once its app is built.

    The schema, the ORM mappings and the imported modules are long-lived; freezing them keeps
    every later collection from scanning them again, and a larger first generation lets a
    request's short-lived objects die between collections. Measured on the nested-read
    benchmark (bench/RESULTS.md), this roughly halves the time of a small query.

    While a long document is parsed in a worker thread (graph.documents), the event loop waits
    for the interpreter's lock at most the switch interval each time it needs it: 5 ms by
    default, 1 ms here. With 1,000 hostile documents arriving, /healthz answered at p99 in
    22 ms with 5 ms and 15 ms with 1 ms (tests/faults/test_hostile.py).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 1000)
    sys.setswitchinterval(0.001)


def app_from_environment() -> FastAPI:
    """The app configured from the environment (for uvicorn worker processes)."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_style)
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL must be set for worker processes.")
    app = create_app(settings, settings.database_url)
    tune_interpreter()
    return app
