"""The compiled read path: a query's root fields answered by one SQL statement each.

``CompiledReads`` (one per app) keeps the plans, cached per (document, operation, role and the
values of the variables that ``@skip``/``@include`` read), and the connections they run on.
``CompiledExecutor`` is graphql-core's executor with one change: a root field of a query whose
plan compiled for the caller runs its statement and returns the JSON text as an
``orjson.Fragment``, which the executor leaves alone and the response encoder embeds as it is;
every other field runs as before. A request whose arguments fail the checks (a bad cursor,
``first`` out of range …) runs that root field on the per-field path, which reports the error.
``CompiledReadsExtension`` lists the root fields that ran compiled in ``extensions.compiled``.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    DirectiveNode,
    DocumentNode,
    GraphQLObjectType,
    OperationDefinitionNode,
    VariableNode,
    visit,
)
from graphql.execution.collect_fields import FieldDetails, FragmentDetails
from graphql.execution.values import VariableValues
from graphql.language import Visitor
from graphql.pyutils import Path
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from db.read_pool import ReadPool
from db.read_sql import Statement, render_data, render_root, shape
from db.replica import Replica
from graph.inputs import unstorable_literal
from graph.limits import cost_variables
from graph.read_planner import CompiledRoot, OperationPlan, Planner, bind
from lending.access import Role

log = logging.getLogger("lending.compiled")

PLAN_CACHE_SIZE = 512


PlanKey = tuple[str | None, Role, tuple[Any, ...]]


@dataclass
class CachedDocument:
    """A validated document: what planning needs, and its plans per operation and role."""

    document: DocumentNode
    fragments: dict[str, FragmentDetails]
    directive_variables: tuple[str, ...]
    cost_variables: tuple[str, ...]
    plans: dict[PlanKey, OperationPlan] = field(default_factory=dict)
    costs: dict[bytes, int] = field(default_factory=dict)  # by the values of cost_variables
    # Whether some operation of the document writes unstorable text (graph.inputs).
    unstorable_literal: bool = False

    def plan_key(
        self, operation: OperationDefinitionNode, role: Role, variables: VariableValues
    ) -> PlanKey:
        """The key of the plan of ``operation`` for ``role`` under these variable values."""
        directives = tuple(variables.coerced.get(name) for name in self.directive_variables)
        return operation.name.value if operation.name else None, role, directives


class _DirectiveVariables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_directive(self, node: DirectiveNode, *_: Any) -> None:
        for argument in node.arguments or ():
            if isinstance(argument.value, VariableNode):
                self.names.add(argument.value.name.value)


def directive_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables that directives of ``document`` read: they change what is selected."""
    visitor = _DirectiveVariables()
    visit(document, visitor)
    return tuple(sorted(visitor.names))


class CompiledReads:
    """One app's compiled read path: the switch, the plan cache, the read connections.

    Compiled statements are query reads: with a ``replica``, they read from it while it is
    usable, and from ``pool`` (the primary's) otherwise.
    """

    def __init__(
        self, schema: Any, pool: ReadPool, *, enabled: bool, replica: Replica | None = None
    ) -> None:
        self.schema = schema  # the Strawberry schema
        self.pool = pool
        self.replica = replica
        self.enabled = enabled
        self.documents: OrderedDict[str, CachedDocument] = OrderedDict()
        # Answers given: whole operations by the short path, root fields by the executor.
        self.answered: Counter[str] = Counter()

    @property
    def converter(self) -> Any:
        return self.schema.schema_converter.scalar_registry

    def document(
        self, query: str, document: DocumentNode, fragments: dict[str, FragmentDetails]
    ) -> CachedDocument:
        """The cache entry of a validated document (made on first sight)."""
        entry = self.documents.get(query)
        if entry is None:
            entry = CachedDocument(
                document,
                fragments,
                directive_variables(document),
                cost_variables(document),
                unstorable_literal=any(
                    unstorable_literal(document, d)
                    for d in document.definitions
                    if isinstance(d, OperationDefinitionNode)
                ),
            )
            self.documents[query] = entry
            if len(self.documents) > PLAN_CACHE_SIZE:
                self.documents.popitem(last=False)
        else:
            self.documents.move_to_end(query)
        return entry

    def lookup(self, query: str) -> CachedDocument | None:
        """A cached document, if it was executed before."""
        return self.documents.get(query)

    def plan(
        self,
        entry: CachedDocument,
        operation: OperationDefinitionNode,
        role: Role,
        variables: VariableValues,
    ) -> OperationPlan:
        """The plan of ``operation`` for ``role`` (made on first use)."""
        key = entry.plan_key(operation, role, variables)
        found = entry.plans.get(key)
        if found is None:
            planner = Planner(
                self.schema._schema, self.converter, entry.fragments, variables, operation, role
            )
            found = entry.plans[key] = planner.plan()
        return found

    def bind(
        self, operation_plan: OperationPlan, slots: tuple[int, ...], variables: VariableValues
    ) -> dict[int, Any] | None:
        """The request's bound slots, or None when the per-field path must answer."""
        try:
            return bind(operation_plan, slots, variables, self.converter, self.schema.config)
        except Exception as error:
            log.debug("compiled read falls back: %s", error)
            return None

    async def run_root(self, compiled: CompiledRoot, bound: dict[int, Any]) -> orjson.Fragment:
        """One root field's JSON."""
        statement = _statement(
            compiled.statements, bound, lambda: render_root(compiled.root, bound)
        )
        return orjson.Fragment(await self.fetch(statement, bound))

    async def run_data(self, operation_plan: OperationPlan, bound: dict[int, Any]) -> bytes:
        """The whole ``data`` object of an operation whose root fields all compile."""
        roots = [(key, operation_plan.compiled[key].root) for key in operation_plan.order]
        statement = _statement(operation_plan.statements, bound, lambda: render_data(roots, bound))
        return await self.fetch(statement, bound)

    async def fetch(self, statement: Statement, bound: dict[int, Any]) -> bytes:
        arguments = statement.arguments(bound)
        if self.replica is not None:
            text = await self.replica.fetch_text(statement.sql, arguments, self.pool)
        else:
            text = await self.pool.fetch_text(statement.sql, arguments)
        if statement.normalize:
            return orjson.dumps(orjson.loads(text))
        return text.encode()


def _statement(cache: dict[Any, Statement], bound: dict[int, Any], render: Any) -> Statement:
    key = shape(bound)
    found = cache.get(key)
    if found is None:
        found = cache[key] = render()
    return found


@dataclass
class RequestReads:
    """One HTTP request's view of the compiled path: its principal's role, what compiled."""

    reads: CompiledReads
    role: Role
    query: str | None = None
    document: DocumentNode | None = None
    compiled_keys: list[str] = field(default_factory=list)
    plan: OperationPlan | None = None

    def root(self, executor: Any, key: str) -> Awaitable[orjson.Fragment] | None:
        """The compiled answer of root field ``key``, or None to resolve it per field."""
        if self.query is None or self.document is None:
            return None
        if self.plan is None:
            entry = self.reads.document(self.query, self.document, executor.fragments)
            self.plan = self.reads.plan(
                entry, executor.operation, self.role, executor.variable_values
            )
        compiled = self.plan.compiled.get(key)
        if compiled is None or key not in self.plan.reading:
            return None  # the executor answers a root __typename without any statement
        bound = self.reads.bind(self.plan, compiled.slots, executor.variable_values)
        if bound is None:
            return None
        return self.reads.run_root(compiled, bound)


class CompiledExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, answering compilable root fields of queries from one statement."""

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: list[FieldDetails],
        path: Path,
        position_context: Any,
    ) -> Any:
        request = getattr(self.context_value, "reads", None)
        if path.prev is None and request is not None and parent_type is self.schema.query_type:
            answer = request.root(self, path.key)
            if answer is not None:
                return self._compiled(answer, request, field_details_list, path)
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    async def _compiled(
        self,
        answer: Awaitable[orjson.Fragment],
        request: RequestReads,
        field_details_list: list[FieldDetails],
        path: Path,
    ) -> Any:
        try:
            fragment = await answer
        except Exception as error:
            field_def = self.schema.query_type.fields[field_details_list[0].node.name.value]  # type: ignore[union-attr]
            self.handle_field_error(error, field_def.type, field_details_list, path)
            return None
        request.compiled_keys.append(str(path.key))
        request.reads.answered["root"] += 1
        return fragment


class CompiledReadsExtension(SchemaExtension):
    """Hands the document to the compiled path and reports which root fields it answered."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        request = getattr(context.context, "reads", None)
        if isinstance(request, RequestReads):
            request.query = context.query
            request.document = context.graphql_document
        yield

    def get_results(self) -> dict[str, Any]:
        request = getattr(self.execution_context.context, "reads", None)
        if isinstance(request, RequestReads) and request.compiled_keys:
            order = request.plan.order if request.plan else ()
            keys = sorted(request.compiled_keys, key=lambda k: order.index(k) if k in order else 0)
            return {"compiled": keys}
        return {}
