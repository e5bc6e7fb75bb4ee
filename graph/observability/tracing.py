"""OpenTelemetry traces, on when OTEL_EXPORTER_OTLP_ENDPOINT is set (and only then imported).

Each GraphQL request is a server span, its GraphQL operation a child span, and each SQL
statement (ORM or compiled read) a child of that: a slow request leads to its slow statement.
Every span carries the request id (``lending.request_id``), the one the logs and the client
see. Spans go to the OTLP/HTTP endpoint in batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from graph.observability.telemetry import CURRENT, RequestRecord

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from db.reads.pool import ReadPool

REQUEST_ID = "lending.request_id"


class Tracing:
    """Spans for requests, operations and statements, from one tracer provider."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self.provider = provider
        self.tracer = provider.get_tracer("lending")
        self._server, self._client = SpanKind.SERVER, SpanKind.CLIENT
        self._error = Status(StatusCode.ERROR)

    @contextmanager
    def request(self, scope: dict[str, Any], record: RequestRecord) -> Iterator[None]:
        """The span of one HTTP request; what it did is added as it ends."""
        record.tracing = self
        name = f"{scope['method']} {scope['path']}"
        attributes = {
            "http.request.method": scope["method"],
            "url.path": scope["path"],
            REQUEST_ID: record.request_id,
        }
        with self.tracer.start_as_current_span(name, kind=self._server, attributes=attributes) as s:
            try:
                yield
            finally:
                s.set_attribute("http.response.status_code", record.status)
                s.set_attribute("lending.outcome", record.outcome)
                s.set_attribute("lending.statements", record.statements)
                if record.operation:
                    s.set_attribute("graphql.operation.name", record.operation)
                if record.type:
                    s.set_attribute("graphql.operation.type", record.type)
                if record.status >= 500:
                    s.set_status(self._error)

    @contextmanager
    def operation(self, record: RequestRecord) -> Iterator[None]:
        """The span of the request's GraphQL operation (named once it is known)."""
        with self.tracer.start_as_current_span(
            "graphql.operation", attributes={REQUEST_ID: record.request_id}
        ) as span:
            try:
                yield
            finally:
                if record.type:
                    span.update_name(f"{record.type} {record.operation or ''}".strip())
                    span.set_attribute("graphql.operation.type", record.type)
                if record.operation:
                    span.set_attribute("graphql.operation.name", record.operation)
                if record.errors:
                    span.set_attribute("lending.errors", record.errors)

    @contextmanager
    def statement(self, sql: str) -> Iterator[None]:
        """The span of one SQL statement (its text: values are bound, never in it)."""
        with self.tracer.start_as_current_span(
            _statement_name(sql), kind=self._client, attributes=self._statement_attributes(sql)
        ):
            yield

    def _statement_attributes(self, sql: str) -> dict[str, Any]:
        record = CURRENT.get()
        attributes = {"db.system.name": "postgresql", "db.query.text": sql}
        if record is not None:
            attributes[REQUEST_ID] = record.request_id
        return attributes

    def instrument(self, engine: AsyncEngine, read_pool: ReadPool) -> None:
        """Trace the statements of ``engine`` and of ``read_pool``."""
        read_pool.around = self.statement

        def before(_conn: Any, _cursor: Any, sql: str, _p: Any, context: Any, _m: Any) -> None:
            context._lending_span = self.tracer.start_span(
                _statement_name(sql),
                kind=self._client,
                attributes=self._statement_attributes(sql),
            )

        def after(_conn: Any, _cursor: Any, _sql: str, _p: Any, context: Any, _m: Any) -> None:
            span = getattr(context, "_lending_span", None)
            if span is not None:
                span.end()

        def failed(exception_context: Any) -> None:
            span = getattr(exception_context.execution_context, "_lending_span", None)
            if span is not None:
                span.set_status(self._error)
                span.record_exception(exception_context.original_exception)
                span.end()

        event.listen(engine.sync_engine, "before_cursor_execute", before)
        event.listen(engine.sync_engine, "after_cursor_execute", after)
        event.listen(engine.sync_engine, "handle_error", failed)

    def shutdown(self) -> None:
        """Send what is buffered and stop."""
        self.provider.shutdown()


def _statement_name(sql: str) -> str:
    words = sql.split(None, 1)
    return words[0].upper() if words else "SQL"


class TracingSettings(Protocol):
    """The settings tracing is made from (graph.server.settings.Settings has them)."""

    @property
    def otel_exporter_otlp_endpoint(self) -> str | None: ...
    @property
    def otel_service_name(self) -> str: ...


def from_settings(
    settings: TracingSettings, exporter: SpanExporter | None = None
) -> Tracing | None:
    """Tracing to the configured OTLP endpoint (or to ``exporter``); None when not configured."""
    if exporter is None and not settings.otel_exporter_otlp_endpoint:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name})
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        assert settings.otel_exporter_otlp_endpoint is not None
        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider)
