"""The only place where the root types are assembled into the schema."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Sequence
from contextlib import aclosing
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import ASTValidationRule
from strawberry.extensions import AddValidationRules
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

import graph.enums  # noqa: F401 - registers the domain enums with GraphQL
from graph.applicants import ApplicantQueries
from graph.applications import ApplicationMutations, ApplicationQueries
from graph.audit import AuditQueries
from graph.compiled.executor import CompiledExecutor, CompiledReadsExtension
from graph.context import QueriesMayReadFromReplica
from graph.decision_stats import DecisionStatsQueries
from graph.documents import CachedDocuments, Documents
from graph.errors import MaskUnexpectedErrors, log_errors, mask
from graph.events import EventSubscriptions
from graph.inputs import RefuseUnstorableText
from graph.limits import (
    LimitSettings,
    QueryLimits,
    limit_extensions,
    validation,
)
from graph.loans import LoanMutations, LoanQueries
from graph.node import NodeQueries
from graph.observability.telemetry import TelemetryExtension
from graph.portfolio import PortfolioQueries
from graph.products import ProductQueries
from graph.reminders import ReminderMutations
from graph.scalars import SCALAR_OVERRIDES
from graph.servicing import ServicingQueries
from graph.viewer import ViewerQueries


@strawberry.type(description="Read the lending data.")
class Query(
    NodeQueries,
    ProductQueries,
    ApplicantQueries,
    ApplicationQueries,
    LoanQueries,
    ServicingQueries,
    PortfolioQueries,
    DecisionStatsQueries,
    AuditQueries,
    ViewerQueries,
):
    """Root query."""


@strawberry.type(description="Change the lending data. Expected failures come back as userErrors.")
class Mutation(ApplicationMutations, LoanMutations, ReminderMutations):
    """Root mutation."""


@strawberry.type(description="Follow changes as they are committed.")
class Subscription(EventSubscriptions):
    """Root subscription."""


def in_document_order(errors: list[GraphQLError]) -> list[GraphQLError]:
    """Field errors in the order of their fields in the document (then of their paths).

    graphql-core lists them as they happen, and fields that wait on the database finish in no
    fixed order: the same request could list its errors one way or the other, and the compiled
    path (whose fields finish together) one way only. Sorted, every path gives one answer.
    """

    def where(error: GraphQLError) -> tuple[int, int, tuple[str, ...]]:
        line, column = (
            (error.locations[0].line, error.locations[0].column) if error.locations else (0, 0)
        )
        path = tuple(f"{part:012d}" if isinstance(part, int) else part for part in error.path or ())
        return line, column, path

    return sorted(errors, key=where)


class LendingSchema(strawberry.Schema):
    """Logs unexpected faults with the request id, and masks them whatever raised them.

    Errors are masked by an extension as the operation ends; a fault raised by an extension's
    own hook ends the operation before that, so what is returned is masked here once more.

    A document longer than ``max_document_chars`` is refused before it is parsed, on every
    transport: reading a long string literal costs the parser about half a microsecond a
    character, with the event loop held (long values belong in variables).
    """

    max_document_chars: int = QueryLimits.max_document_chars

    def _too_long(self, query: str | None) -> GraphQLError | None:
        if query is None or len(query) <= self.max_document_chars:
            return None
        return GraphQLError(
            f"The document has {len(query)} characters. Allowed: {self.max_document_chars}; "
            "send long values as variables.",
            extensions={"code": "QUERY_TOO_COMPLEX"},
        )

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors, execution_context)

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """Execute a query or mutation; a subscription is refused (InvalidOperationTypeError),
        since its events need a stream (``subscribe``, ``stream``)."""
        allowed = set(allowed_operation_types or OperationType) - {OperationType.SUBSCRIPTION}
        too_long = self._too_long(query)
        if too_long is not None:
            return ExecutionResult(data=None, errors=[too_long])
        result = await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed,
            operation_extensions,
        )
        _mask_errors(result, _request_id(context_value))
        return result

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> Any:
        """Stream an operation's results (a subscription's events; WebSocket and multipart
        ``subscribe`` come here too), each masked as ``execute`` masks its one result: the
        extensions see the stream only as a whole."""
        too_long = self._too_long(query)
        if too_long is not None:
            return _refused(too_long)
        results = await super().stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            allowed_operation_types,
        )
        return _masked(results, _request_id(context_value))


def _request_id(context: Any) -> str:
    return str(getattr(context, "request_id", None) or "-")


def _mask_errors(result: Any, request_id: str) -> None:
    """A result's errors masked; with data, its field errors in the document's order."""
    errors = getattr(result, "errors", None)
    if errors:
        masked = [mask(error, request_id) for error in errors]
        result.errors = in_document_order(masked) if result.data is not None else masked


async def _masked(results: AsyncGenerator[Any, None], request_id: str) -> AsyncGenerator[Any, None]:
    """A stream's results, each with its errors masked (and ordered) as ``execute`` does."""
    async with aclosing(results):
        async for result in results:
            _mask_errors(result, request_id)
            yield result


async def _refused(error: GraphQLError) -> AsyncGenerator[Any, None]:
    yield PreExecutionError(data=None, errors=[error])


def build_schema(
    settings: LimitSettings | None = None,
    validation_rules: Sequence[type[ASTValidationRule]] = (),
) -> LendingSchema:
    """The schema with its extensions: limits (from ``settings``, the defaults without),
    ``validation_rules`` of the server's (the catalogue-only rule), the document cache
    (graph.documents), error masking."""
    settings = settings or QueryLimits()
    documents = Documents(validation(settings))  # one cache per schema
    rules = [lambda: AddValidationRules(list(validation_rules))] if validation_rules else []
    built = LendingSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        scalar_overrides=SCALAR_OVERRIDES,
        config=StrawberryConfig(auto_camel_case=True),
        execution_context_class=CompiledExecutor,
        extensions=[
            *rules,
            *limit_extensions(settings),
            RefuseUnstorableText,
            CompiledReadsExtension,
            QueriesMayReadFromReplica,
            TelemetryExtension,
            MaskUnexpectedErrors,
            lambda: CachedDocuments(documents),
        ],
    )
    built.max_document_chars = settings.max_document_chars
    return built


schema = build_schema()
