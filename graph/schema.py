"""The only place where the root types are assembled into the schema."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import AddValidationRules, ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult

import graph.enums  # noqa: F401 - registers the domain enums with GraphQL
from graph.applicants import ApplicantQueries
from graph.applications import ApplicationMutations, ApplicationQueries
from graph.audit import AuditQueries
from graph.compiled import CompiledExecutor, CompiledReadsExtension
from graph.context import QueriesMayReadFromReplica
from graph.errors import MaskUnexpectedErrors, log_errors, mask
from graph.events import EventSubscriptions
from graph.inputs import RefuseUnstorableText
from graph.limits import limit_extensions
from graph.loans import LoanMutations, LoanQueries
from graph.node import NodeQueries
from graph.persisted import CatalogueOnly
from graph.products import ProductQueries
from graph.reminders import ReminderMutations
from graph.scalars import SCALAR_OVERRIDES
from graph.servicing import ServicingQueries
from graph.settings import Settings
from graph.telemetry import TelemetryExtension


@strawberry.type(description="Read the lending data.")
class Query(
    NodeQueries,
    ProductQueries,
    ApplicantQueries,
    ApplicationQueries,
    LoanQueries,
    ServicingQueries,
    AuditQueries,
):
    """Root query."""


@strawberry.type(description="Change the lending data. Expected failures come back as userErrors.")
class Mutation(ApplicationMutations, LoanMutations, ReminderMutations):
    """Root mutation."""


@strawberry.type(description="Follow changes as they are committed.")
class Subscription(EventSubscriptions):
    """Root subscription."""


class LendingSchema(strawberry.Schema):
    """Logs unexpected faults with the request id, and masks them whatever raised them.

    Errors are masked by an extension as the operation ends; a fault raised by an extension's
    own hook ends the operation before that, so what is returned is masked here once more.
    """

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors, execution_context)

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        result = await super().execute(*args, **kwargs)
        if result.errors:
            request_id = str(getattr(kwargs.get("context_value"), "request_id", None) or "-")
            result.errors = [mask(error, request_id) for error in result.errors]
        return result


def build_schema(settings: Settings | None = None) -> LendingSchema:
    """The schema with its extensions: limits, parser and validation caches, error masking."""
    settings = settings or Settings()
    only_catalogue = (
        [lambda: AddValidationRules([CatalogueOnly])] if settings.persisted_operations_only else []
    )
    return LendingSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        scalar_overrides=SCALAR_OVERRIDES,
        config=StrawberryConfig(auto_camel_case=True),
        execution_context_class=CompiledExecutor,
        extensions=[
            *only_catalogue,
            *limit_extensions(settings),
            RefuseUnstorableText,
            CompiledReadsExtension,
            QueriesMayReadFromReplica,
            TelemetryExtension,
            MaskUnexpectedErrors,
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
        ],
    )


schema = build_schema()
