"""The compiled read path: a query's root fields answered by one SQL statement each.

``CompiledReads`` (one per app) keeps the plans, cached per (document, operation, role and the
values of the variables that ``@skip``/``@include`` read), and the connections they run on.
``CompiledExecutor`` is graphql-core's executor with one change: a root field of a query whose
plan compiled for the caller runs its statement and returns the JSON text as an
``orjson.Fragment``, which the executor leaves alone and the response encoder embeds as it is;
every other field runs as before. A request whose arguments fail the checks (a bad cursor,
``first`` out of range …) runs that root field on the per-field path, which reports the error.
``CompiledReadsExtension`` lists the root fields that ran compiled in ``extensions.compiled``.

A subscription's events are executed each with a context of their own (fresh loaders, a session
closed once the event is answered), and an event's objects (fields declared ``SameAs``, such as
``LoanEvent.application``) are read by one statement each, on the primary, like the root query
field they name; subscribers of one process selecting the same thing share that read.
A mutation's payload objects (its payload's fields declared ``SameAs``, such as
``DecideApplicationPayload.loan``) are read the same way, one statement each, once the mutation
is done: on the primary once it committed, and through the dry run's own transaction (held open
until the payload is read, see graph.mutation) when nothing was kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    DirectiveNode,
    DocumentNode,
    GraphQLObjectType,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    visit,
)
from graphql.execution.collect_fields import FieldDetails, FragmentDetails
from graphql.execution.values import VariableValues
from graphql.language import Visitor
from graphql.pyutils import Path
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from db.lean import lean
from db.reads import plan as rp
from db.reads.plan import of_the_row
from db.reads.pool import ReadPool
from db.reads.sql import Statement, render_data, render_root, shape
from db.replica import Replica
from graph.compiled.planner import CompiledRoot, NotCompilable, OperationPlan, Planner, bind
from graph.compiled.reads import READS, SameAs
from graph.documents import TextCache
from graph.inputs import unstorable_literal
from graph.limits import cost_variables
from lending.access import Principal, Role

log = logging.getLogger("lending.compiled")

PLAN_CACHE_SIZE = 512


PlanKey = tuple[str | None, Role, tuple[Any, ...]]
# The plan of an object field read as a root field reads it, and its key's slot (None: per field).
EventPlan = tuple[OperationPlan, int] | None


@dataclass
class CachedDocument:
    """A validated document: what planning needs, and its plans per operation and role."""

    document: DocumentNode
    fragments: dict[str, FragmentDetails]
    directive_variables: tuple[str, ...]
    cost_variables: tuple[str, ...]
    plans: dict[PlanKey, OperationPlan] = field(default_factory=dict)
    # Plans of mutation payloads' objects, by plan key and (mutation key, object key).
    payload_plans: dict[tuple[PlanKey, str, str], EventPlan] = field(default_factory=dict)
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
        self.documents: TextCache[CachedDocument] = TextCache(max_entries=PLAN_CACHE_SIZE)
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
            self.documents.put(query, len(query), entry)
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
        self,
        operation_plan: OperationPlan,
        slots: tuple[int, ...],
        variables: VariableValues,
        principal: Principal | None = None,
    ) -> dict[int, Any] | None:
        """The request's bound slots, or None when the per-field path must answer; a
        borrower's roots are scoped to their own rows."""
        owner, name = (principal.owner, principal.name) if principal else (None, None)
        try:
            config = self.schema.config
            return bind(operation_plan, slots, variables, self.converter, config, owner, name)
        except Exception as error:
            log.debug("compiled read falls back: %s", error)
            return None

    async def run_root(self, compiled: CompiledRoot, bound: dict[int, Any]) -> orjson.Fragment:
        """One root field's JSON."""
        statement = _statement(
            compiled.statements, bound, lambda: render_root(compiled.root, bound)
        )
        return orjson.Fragment(await self.fetch(statement, bound))

    async def run_payload(
        self, compiled: CompiledRoot, bound: dict[int, Any], dry_run: AsyncSession | None
    ) -> orjson.Fragment:
        """A mutation's payload object's JSON: on the primary (what was committed), or through
        the transaction of a dry run, where alone its rows exist."""
        statement = _statement(
            compiled.statements, bound, lambda: render_root(compiled.root, bound)
        )
        if dry_run is None:
            return orjson.Fragment(await self.fetch(statement, bound, primary=True))
        connection = await lean(dry_run)
        text: str = await connection.fetchval(statement.sql, *statement.arguments(bound))
        return orjson.Fragment(_json(statement, text))

    async def run_data(self, operation_plan: OperationPlan, bound: dict[int, Any]) -> bytes:
        """The whole ``data`` object of an operation whose root fields all compile."""
        roots = [(key, operation_plan.compiled[key].root) for key in operation_plan.order]
        statement = _statement(operation_plan.statements, bound, lambda: render_data(roots, bound))
        return await self.fetch(statement, bound)

    async def fetch(
        self, statement: Statement, bound: dict[int, Any], *, primary: bool = False
    ) -> bytes:
        arguments = statement.arguments(bound)
        if self.replica is not None and not primary:
            text = await self.replica.fetch_text(statement.sql, arguments, self.pool)
        else:
            text = await self.pool.fetch_text(statement.sql, arguments)
        return _json(statement, text)

    def plan_same_as(
        self, executor: Any, parent: GraphQLObjectType, key: str, details: list[FieldDetails]
    ) -> tuple[OperationPlan, int] | None:
        """The plan of an event's object field for the executor's caller (None: per field)."""
        role = getattr(getattr(executor.context_value, "principal", None), "role", None)
        if role is None:
            return None
        planner = Planner(
            self.schema._schema,
            self.converter,
            executor.fragments,
            executor.variable_values,
            executor.operation,
            role,
        )
        try:
            return planner.same_as(parent, key, details)
        except NotCompilable as reason:
            log.debug("event field %s.%s runs per field: %s", parent.name, key, reason)
            return None

    async def run_shared(
        self, compiled: CompiledRoot, bound: dict[int, Any], shared: dict[Any, Any]
    ) -> orjson.Fragment:
        """A root's JSON read on the primary, once for every caller holding ``shared`` (the
        subscribers of one event): the statement and its arguments say what it returns."""
        statement = _statement(
            compiled.statements, bound, lambda: render_root(compiled.root, bound)
        )
        memo = (statement.sql, repr(statement.arguments(bound)))
        found = shared.get(memo)
        if found is None:
            found = shared[memo] = asyncio.ensure_future(self.fetch(statement, bound, primary=True))
            found.add_done_callback(_retrieved)
        return orjson.Fragment(await asyncio.shield(found))


def _json(statement: Statement, text: str) -> bytes:
    """A statement's JSON text as response bytes (normalized when the statement asks)."""
    return orjson.dumps(orjson.loads(text)) if statement.normalize else text.encode()


def _same_as(parent: GraphQLObjectType, details: list[FieldDetails]) -> tuple[Any, Any]:
    """A field's Strawberry definition and its ``SameAs`` read (None when it has none)."""
    field_def = parent.fields.get(details[0].node.name.value)
    definition = (field_def.extensions or {}).get("strawberry-definition") if field_def else None
    declaration = getattr(definition, "metadata", {}).get(READS)
    return definition, declaration if isinstance(declaration, SameAs) else None


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a shared read's failure as seen: each caller still awaiting it gets it too."""
    if not future.cancelled():
        future.exception()


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
    principal: Principal
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
                entry, executor.operation, self.principal.role, executor.variable_values
            )
        compiled = self.plan.compiled.get(key)
        if compiled is None or key not in self.plan.reading:
            return None  # the executor answers a root __typename without any statement
        bound = self.reads.bind(self.plan, compiled.slots, executor.variable_values, self.principal)
        if bound is None:
            return None
        return self.reads.run_root(compiled, bound)

    def known(self, executor: Any) -> None:
        """Keep the document (parsed, validated, now executed) for the short path."""
        if self.query is not None and self.document is not None:
            self.reads.document(self.query, self.document, executor.fragments)

    def payload_object(
        self,
        executor: Any,
        parent: GraphQLObjectType,
        source: Any,
        details: list[FieldDetails],
        path: Path,
    ) -> Awaitable[orjson.Fragment] | None:
        """The compiled read of a mutation payload's object field (``SameAs``), or None: per
        field. Planned once per document, operation, role and field."""
        definition, declaration = _same_as(parent, details)
        if declaration is None:
            return None
        if self.query is None or self.document is None:
            return None
        entry = self.reads.document(self.query, self.document, executor.fragments)
        role = self.principal.role
        key = (
            entry.plan_key(executor.operation, role, executor.variable_values),
            str(path.prev.key) if path.prev else "",
            str(path.key),
        )
        if key not in entry.payload_plans:
            entry.payload_plans[key] = _worth_a_statement(
                self.reads.plan_same_as(executor, parent, key[2], details), key[2]
            )
        found = entry.payload_plans[key]
        if found is None:
            return None
        plan, slot = found
        compiled = plan.compiled[key[2]]
        bound = self.reads.bind(plan, compiled.slots, executor.variable_values, self.principal)
        if bound is None:
            return None
        value = getattr(source, definition.python_name)
        bound[slot] = None if value is None else declaration.key(value)
        if bound[slot] is None:
            return _null()
        return self.reads.run_payload(compiled, bound, executor.context_value.dry_run)


def _worth_a_statement(found: EventPlan, key: str) -> EventPlan:
    """A payload object's plan, unless its selection reads nothing but the object's own row:
    the mutation holds that row (or its replay loads it), so the per-field path answers
    without a statement where the compiled one would spend one."""
    if found is None:
        return None
    root = found[0].compiled[key].root
    if isinstance(root, rp.NodeById) and all(of_the_row(case.obj) for case in root.cases):
        return None
    return found


class CompiledExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, answering compilable root fields of queries from one statement,
    and executing each subscription event with a context of its own (see the module)."""

    # A subscription's plans of its events' object fields, by response key (made on first use,
    # shared by the executors of its events); None outside subscriptions.
    event_plans: dict[str, EventPlan] | None = None
    per_event = False

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: list[FieldDetails],
        path: Path,
        position_context: Any,
    ) -> Any:
        if path.prev is None:
            request = getattr(self.context_value, "reads", None)
            if request is not None and parent_type is self.schema.query_type:
                answer = request.root(self, path.key)
                if answer is not None:
                    return self._compiled(answer, parent_type, field_details_list, path, request)
            elif request is not None and parent_type is self.schema.mutation_type:
                request.known(self)  # the next request of this document takes the short path
        elif self.per_event and path.prev.prev is None:
            answer = self._event_object(parent_type, source, field_details_list, path)
            if answer is not None:
                return self._compiled(answer, parent_type, field_details_list, path)
        elif path.prev.prev is None and self.operation.operation is OperationType.MUTATION:
            request = getattr(self.context_value, "reads", None)
            if request is not None:
                answer = request.payload_object(self, parent_type, source, field_details_list, path)
                if answer is not None:
                    return self._compiled(answer, parent_type, field_details_list, path, request)
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    async def _compiled(
        self,
        answer: Awaitable[orjson.Fragment],
        parent_type: GraphQLObjectType,
        field_details_list: list[FieldDetails],
        path: Path,
        request: RequestReads | None = None,
    ) -> Any:
        named = str(path.key) if path.prev is None else f"{path.prev.key}.{path.key}"
        if request is not None:
            # Listed before the read: the fields start in the document's order, and finish in
            # no fixed one.
            request.compiled_keys.append(named)
        try:
            fragment = await answer
        except Exception as error:
            if request is not None:
                request.compiled_keys.remove(named)
            field_def = parent_type.fields[field_details_list[0].node.name.value]
            self.handle_field_error(error, field_def.type, field_details_list, path)
            return None
        if request is not None:
            request.reads.answered["root" if path.prev is None else "payload"] += 1
        return fragment

    # ---- subscription events ---------------------------------------------------------------

    def build_per_event_executor(self, payload: Any) -> Any:
        if self.event_plans is None:
            self.event_plans = {}  # before the copy, so that every event shares it
        executor = super().build_per_event_executor(payload)
        assert isinstance(executor, CompiledExecutor)
        executor.per_event = True
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        if not self.per_event:
            return super().execute_operation(serially)
        shared = getattr(self.root_value, "shared", None)
        principal = getattr(self.context_value, "principal", None)
        if shared is None or principal is None:
            return self._execute_event(serially)
        # Subscribers of this process who sent the same operation with the same variables,
        # as the same caller, are answered the same: the event is executed once for them, by
        # the first to come; the others wait for its result (each on a future of its own, so
        # that one leaving cancels nobody else's wait).
        key = (SharedResult, id(self.operation), repr(self.variable_values.coerced), principal)
        entry = shared.get(key)
        if entry is None or entry.operation is not self.operation:  # an id is reused once freed
            entry = shared[key] = SharedResult(self.operation)
            return self._lead(entry, serially)
        if entry.done:
            return entry.result if entry.result is not None else self._execute_event(serially)
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry.waiters.append(waiter)
        return self._follow(waiter, serially)

    def _execute_event(self, serially: bool | None) -> Any:
        """Execute the event with a context of its own (see ``Context.for_event``)."""
        for_event = getattr(self.context_value, "for_event", None)
        if for_event is None:
            return super().execute_operation(serially)
        self.context_value = for_event()
        result = super().execute_operation(serially)
        # A result ready at once read nothing: only resolvers that await open a session.
        if not self.is_awaitable(result):
            return result
        return _then(result, self.context_value.close_event)

    async def _lead(self, entry: SharedResult, serially: bool | None) -> Any:
        result = None
        try:
            result = await _awaited(self._execute_event(serially), self)
            return result
        finally:
            # An error names its request: then each subscriber gets its own result.
            entry.done = True
            entry.result = result if result is not None and not result.errors else None
            for waiter in entry.waiters:
                if not waiter.done():
                    waiter.set_result(entry.result)
            entry.waiters.clear()

    async def _follow(self, waiter: asyncio.Future[Any], serially: bool | None) -> Any:
        result = await waiter
        if result is None:
            return await _awaited(self._execute_event(serially), self)
        return result

    def _event_object(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: list[FieldDetails],
        path: Path,
    ) -> Awaitable[orjson.Fragment] | None:
        """The compiled read of an event's object field (``SameAs``), or None: per field."""
        reads: CompiledReads | None = getattr(self.context_value, "compiled", None)
        shared = getattr(source, "shared", None)
        _, declaration = _same_as(parent_type, field_details_list)
        if reads is None or shared is None or declaration is None:
            return None
        assert self.event_plans is not None
        key = str(path.key)
        if key not in self.event_plans:
            self.event_plans[key] = reads.plan_same_as(self, parent_type, key, field_details_list)
        found = self.event_plans[key]
        if found is None:
            return None
        plan, slot = found
        compiled = plan.compiled[key]
        principal = getattr(self.context_value, "principal", None)
        bound = reads.bind(plan, compiled.slots, self.variable_values, principal)
        if bound is None:
            return None
        bound[slot] = declaration.key(source)
        if bound[slot] is None:
            return _null()
        return reads.run_shared(compiled, bound, shared)


@dataclass(eq=False)
class SharedResult:
    """One event's result for the subscribers who asked the same (``CompiledExecutor``)."""

    operation: OperationDefinitionNode
    done: bool = False
    result: Any = None  # None once done: each computes its own (the first one's had errors)
    waiters: list[asyncio.Future[Any]] = field(default_factory=list)


async def _awaited(result: Any, executor: Any) -> Any:
    return await result if executor.is_awaitable(result) else result


async def _null() -> orjson.Fragment:
    return orjson.Fragment(b"null")


async def _then(result: Awaitable[Any], close: Any) -> Any:
    try:
        return await result
    finally:
        await close()


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
