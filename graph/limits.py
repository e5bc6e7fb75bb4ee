"""Query limits and production hardening, checked before execution.

Lexical tokens are capped by Strawberry's limiter as the document is parsed. Then, before any
other validation rule sees the document, one pass (``document_shape``) measures each operation
with its fragments expanded: its depth (introspection fields not counted), its aliases and its
fields. Each fragment is measured once and its figures reused wherever it is spread, so the
pass takes time linear in the document's size, however the fragments nest (a 1 KB document
spreading each of 30 fragments twice into the next one expands to 2**30 fields: it is refused
in microseconds, where expanding it would take hours). An operation deeper than
``max_query_depth``, with more than ``max_aliases`` aliases or ``max_expanded_fields`` fields is
refused as QUERY_TOO_COMPLEX, and nothing else runs.

On top of those, every operation has a cost: the
number of objects it may return, counted in the manner of GitHub's node limit::

    cost(selection set) = sum of cost(field) over its fields, fragment spreads and inline
                          fragments expanded (whatever their type condition or @skip/@include)
    cost(field)         = 0                          a scalar, an enum, or an introspection field
                        = size × cost(selection)     a field whose type is named *Connection
                        = len(ids) × (1 + cost(sel)) a list field fetched by an `ids` list (nodes)
                        = bound × (1 + cost(sel))    any other list of objects (but a connection's
                                                     edges, counted by its `first`), by the most
                                                     items it can hold (LIST_BOUNDS: an
                                                     application's decisions, a schedule's
                                                     instalments …)
                        = 1 + cost(selection)        any other object field

``size`` is the value of ``first`` after variables are substituted, or of ``last`` when
``first`` is absent, null or not a whole number (a page is read from one end, and the resolver
refuses both together): 20 when neither is a whole number, clamped to 0..100 (the resolver
refuses anything outside that range anyway);
``len(ids)`` is clamped to 100 likewise. So ``applicants(first: 10) { edges { node { email } } }``
costs 10 × (1 + 1) = 20, and nested connections multiply. An operation costing more than
``max_query_cost`` is refused before any resolver runs; every response that got that far carries
``extensions.cost = {"requestedNodes": cost, "limit": max_query_cost}``, with
``requestedQueryCost`` and ``throttleStatus`` when the caller's budget was charged
(graph.budgets).

In production, "Did you mean …?" hints are removed from error messages, and introspection is
refused (except ``__typename``) unless turned on.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    Visitor,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_list_type,
    value_from_ast_untyped,
    visit,
)
from graphql.validation import (
    ASTValidationRule,
    NoSchemaIntrospectionCustomRule,
)
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    SchemaExtension,
)
from strawberry.schema.schema import validate_document
from strawberry.types.graphql import OperationType

from graph.budgets import MUTATION_COST, THROTTLED, Charge, Crowded, cost_report, retry_after
from graph.documents import Rules, Validate
from graph.relay import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from lending.assessment import MAX_FACTORS
from lending.decision_stats import MAX_GROUPS
from lending.delinquency import BUCKET_BOUNDS
from lending.money import MINOR_DIGITS
from lending.repayment import MAX_INSTALLMENTS
from lending.states import MAX_DECISIONS, MAX_REMINDERS, DecisionOutcome, LoanStatus

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


# The most items a plain list (not a connection) of objects can hold, counted in full.
LIST_BOUNDS: dict[tuple[str, str], int] = {
    ("LoanApplication", "decisions"): MAX_DECISIONS,
    ("RepaymentSchedule", "installments"): MAX_INSTALLMENTS,
    ("SchedulePreview", "installments"): MAX_INSTALLMENTS,
    # A payment is applied to each instalment at most once.
    ("Payment", "allocations"): MAX_INSTALLMENTS,
    ("Assessment", "factors"): MAX_FACTORS,
    ("Installment", "reminders"): MAX_REMINDERS,
    # Product catalogues are short; this one bound is assumed, not enforced.
    ("Query", "loanProducts"): 100,
    # A portfolio has an entry per currency, a count per state and a row per bucket.
    ("Query", "portfolio"): len(MINOR_DIGITS),
    ("Portfolio", "loansByStatus"): len(LoanStatus),
    ("Portfolio", "buckets"): len(BUCKET_BOUNDS),
    ("Query", "decisionStats"): MAX_GROUPS,
    ("DecisionGroup", "byOutcome"): len(DecisionOutcome),
}
# A mutation reports at most one userError per input field, and no input has 20.
USER_ERRORS = 20


def _clamp(value: Any, default: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a JSON variable of 100.0 is coerced to the Int 100
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return min(max(value, 0), MAX_PAGE_SIZE)


class _CostWalk:
    """One walk over one operation; fragment costs are memoized, so the walk stays linear."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.fragment_costs: dict[str, int] = {}

    def argument(self, node: FieldNode, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, self.variables)
        return None

    def selections(self, parent: GraphQLNamedType | None, selection_set: SelectionSetNode) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self.field(parent, selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                scope = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(scope, selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value)
        return total

    def fragment(self, name: str) -> int:
        if name not in self.fragment_costs:
            self.fragment_costs[name] = 0  # validation refuses cycles; this guards the walk anyway
            fragment = self.fragments.get(name)
            if fragment is not None:
                scope = self.schema.get_type(fragment.type_condition.name.value)
                self.fragment_costs[name] = self.selections(scope, fragment.selection_set)
        return self.fragment_costs[name]

    def field(self, parent: GraphQLNamedType | None, node: FieldNode) -> int:
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        definition = parent.fields.get(node.name.value)  # None for __schema, __type, __typename
        if definition is None or node.selection_set is None:
            return 0
        named = get_named_type(definition.type)
        inner = self.selections(named, node.selection_set)
        if named.name.endswith("Connection"):
            size = _clamp(self.argument(node, "last"), DEFAULT_PAGE_SIZE)
            return _clamp(self.argument(node, "first"), size) * inner
        name = node.name.value
        if is_list_type(get_nullable_type(definition.type)) and name != "edges":
            if "ids" in definition.args:
                ids = self.argument(node, "ids")
                return min(len(ids) if isinstance(ids, list) else 1, MAX_PAGE_SIZE) * (1 + inner)
            bound = USER_ERRORS if name == "userErrors" else LIST_BOUNDS.get((parent.name, name))
            return (bound or MAX_PAGE_SIZE) * (1 + inner)
        return 1 + inner


def query_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> int:
    """The cost (see the module docstring) of the operation that will run; 0 if there is none."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    root = schema.get_root_type(operation.operation)
    values = {
        definition.variable.name.value: value_from_ast_untyped(definition.default_value)
        for definition in operation.variable_definitions or ()
        if definition.default_value is not None
    }
    values.update(variables if isinstance(variables, dict) else {})
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    return _CostWalk(schema, fragments, values).selections(root, operation.selection_set)


class _CostVariables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.inside = 0

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        self.inside += node.name.value in COST_ARGUMENTS

    def leave_argument(self, node: ArgumentNode, *_: Any) -> None:
        self.inside -= node.name.value in COST_ARGUMENTS

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        if self.inside:
            self.names.add(node.name.value)


COST_ARGUMENTS = frozenset({"first", "last", "ids"})


def cost_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables a document's cost depends on (in `first`, `last` and `ids` arguments)."""
    visitor = _CostVariables()
    visit(document, visitor)
    return tuple(sorted(visitor.names))


class QueryCostLimiter(SchemaExtension):
    """Refuse an operation whose cost is over the limit, or that the caller's bucket of cost
    points cannot pay for (graph.budgets); report both in the extensions."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.cost: int | None = None
        self.charge: Charge | None = None

    async def on_execute(self) -> AsyncIterator[None]:
        # Execution only starts on a document that passed validation, so the walk can trust it.
        context = self.execution_context
        assert context.graphql_document is not None
        self.cost = query_cost(
            context.schema._schema,
            context.graphql_document,
            context.operation_name,
            context.variables,
        )
        if self.cost > self.limit:
            raise GraphQLError(
                f"Query cost {self.cost} exceeds the limit of {self.limit} requested nodes; "
                "ask for smaller pages (`first`, `last`) or nest fewer connections.",
                extensions={"code": "QUERY_TOO_COMPLEX"},
            )
        request = context.context
        budgets = getattr(request, "budgets", None)
        principal = getattr(request, "principal", None)
        if budgets is not None and principal is None:
            # Over a WebSocket, the caller is known from the connection's parameters.
            principal = await request.authenticated()
        if budgets is not None and principal is not None:
            mutation = context.operation_type is OperationType.MUTATION
            self.charge = budgets.charge(principal, MUTATION_COST if mutation else self.cost)
            if not self.charge.paid:
                error = self.charge.error(getattr(request, "request_id", None))
                raise GraphQLError(error["message"], extensions=error["extensions"])
        shares = getattr(request, "shares", None)
        credential = request.credential() if principal is not None else None
        if (
            shares is None
            or not getattr(request, "over_websocket", False)
            or credential is None
            or context.operation_type is OperationType.SUBSCRIPTION
        ):
            yield
            return
        # A query or mutation sent over a WebSocket takes one of its key's places, as a request
        # over HTTP does (a subscription holds none while it waits for events).
        try:
            async with shares.place(credential):
                yield
        except Crowded as crowded:
            wait = retry_after(shares.wait_s)
            raise GraphQLError(
                f"Throttled: {crowded}. Retry in {wait} s.",
                extensions={"code": THROTTLED, "retryable": True, "retryAfter": wait},
            ) from None

    def get_results(self) -> dict[str, Any]:
        if self.cost is None:
            return {}
        return {"cost": cost_report(self.cost, self.limit, self.charge)}


def _without_suggestion(error: GraphQLError) -> GraphQLError:
    if "Did you mean" not in error.message:
        return error
    # A fresh error: the validation cache may hold on to the original.
    return GraphQLError(
        _SUGGESTION.sub("", error.message),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )


class HideSuggestions(SchemaExtension):
    """Remove "Did you mean …?" from error messages: they reveal the schema piece by piece."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [_without_suggestion(error) for error in errors]  # type: ignore[union-attr]


@dataclass(frozen=True)
class Shape:
    """A selection set with its fragments expanded: how deep it nests object fields (not
    counting introspection fields), how many aliases and how many fields it holds."""

    depth: int = 0
    aliases: int = 0
    fields: int = 0


_NONE = Shape()


class _ShapeWalk:
    """One walk over a document; a fragment is measured once, however often it is spread."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self.measured: dict[str, Shape] = {}
        # In the document as written (each selection set is read once): directives, and
        # fields repeating a response name of their selection set (validation compares those
        # pairwise to check they can merge).
        self.directives = self.repeated = 0

    def fragment(self, name: str) -> Shape:
        shape = self.measured.get(name)
        if shape is None:
            # A spread of a fragment being measured is a cycle, which validation refuses: it
            # counts for nothing here. An unknown fragment likewise.
            self.measured[name] = _NONE
            fragment = self.fragments.get(name)
            if fragment is not None:
                self.measured[name] = shape = self.selections(fragment.selection_set)
            else:
                shape = _NONE
        return shape

    def selections(self, selection_set: SelectionSetNode) -> Shape:
        depth = aliases = fields = 0
        names: set[str] = set()
        for selection in selection_set.selections:
            self.directives += len(selection.directives or ())
            if isinstance(selection, FieldNode):
                name = (selection.alias or selection.name).value
                self.repeated += name in names
                names.add(name)
                inner = _NONE
                if selection.selection_set is not None:
                    inner = self.selections(selection.selection_set)
                introspection = selection.name.value.startswith("__")
                if selection.selection_set is not None and not introspection:
                    depth = max(depth, 1 + inner.depth)
                aliases += (selection.alias is not None) + inner.aliases
                fields += 1 + inner.fields
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self.selections(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value)
            else:
                continue
            depth = max(depth, inner.depth)
            aliases += inner.aliases
            fields += inner.fields
        return Shape(depth, aliases, fields)


# What one document may hold as written. Validation visits every definition and directive once
# per rule: a document of thousands of one-line operations or fragments validates for tens of
# milliseconds, where a client's document (one operation and its fragments) needs a few.
MAX_OPERATIONS = 20
MAX_FRAGMENTS = 100
MAX_DIRECTIVES = 50
MAX_REPEATED_FIELDS = 100


def document_shape(document: DocumentNode) -> tuple[dict[str, Shape], int, int]:
    """Every operation's shape by name (``anonymous`` for an unnamed one), the directives on
    the document's selections and its repeated fields, in time linear in the document's size;
    RecursionError for selections nested beyond Python's stack."""
    walk = _ShapeWalk(document)
    shapes = {
        definition.name.value if definition.name else "anonymous": walk.selections(
            definition.selection_set
        )
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    }
    for name in walk.fragments:
        walk.fragment(name)  # spread or not, a fragment is validated: its directives count
    return shapes, walk.directives, walk.repeated


def shape_errors(document: DocumentNode, limits: LimitSettings) -> list[GraphQLError]:
    """Why ``document`` is too large to validate or run (none when it is not)."""
    operations = sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)
    fragments = sum(isinstance(d, FragmentDefinitionNode) for d in document.definitions)
    if operations > MAX_OPERATIONS or fragments > MAX_FRAGMENTS:
        return [
            _too_complex(
                f"The document holds {operations} operations and {fragments} fragments. "
                f"Allowed: {MAX_OPERATIONS} and {MAX_FRAGMENTS}; send one operation at a time."
            )
        ]
    try:
        shapes, directives, repeated = document_shape(document)
    except RecursionError:
        return [_too_complex("The document nests selections too deeply to be read.")]
    if directives > MAX_DIRECTIVES:
        return [_too_complex(f"{directives} directives found. Allowed: {MAX_DIRECTIVES}")]
    if repeated > MAX_REPEATED_FIELDS:
        return [
            _too_complex(
                f"{repeated} fields repeat a name of their selection set. Allowed: "
                f"{MAX_REPEATED_FIELDS}; ask for each field once."
            )
        ]
    errors: list[GraphQLError] = []
    for name, shape in shapes.items():
        if shape.depth > limits.max_query_depth:
            errors.append(
                _too_complex(
                    f"'{name}' exceeds maximum operation depth of {limits.max_query_depth}"
                )
            )
        if shape.aliases > limits.max_aliases:
            errors.append(
                _too_complex(f"{shape.aliases} aliases found. Allowed: {limits.max_aliases}")
            )
        if shape.fields > limits.max_expanded_fields:
            errors.append(
                _too_complex(
                    f"'{name}' holds {shape.fields} fields with its fragments expanded. Allowed: "
                    f"{limits.max_expanded_fields}; spread fewer fragments, or ask for less."
                )
            )
    return errors


def _too_complex(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "QUERY_TOO_COMPLEX"})


def validation(limits: LimitSettings) -> Validate:
    """Validation as the server runs it: the document's shape first (``shape_errors``), and only
    a document within the limits goes on to graphql-core's rules (and the schema's own)."""

    def validated(
        schema: GraphQLSchema, document: DocumentNode, rules: Rules
    ) -> list[GraphQLError]:
        return shape_errors(document, limits) or validate_document(schema, document, rules)

    return validated


class LimitSettings(Protocol):
    """The settings the limits are made from (graph.server.settings.Settings has them)."""

    @property
    def max_query_depth(self) -> int: ...
    @property
    def max_aliases(self) -> int: ...
    @property
    def max_expanded_fields(self) -> int: ...
    @property
    def max_document_chars(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...
    @property
    def max_query_cost(self) -> int: ...
    @property
    def introspection_enabled(self) -> bool: ...
    @property
    def production(self) -> bool: ...


@dataclass(frozen=True)
class QueryLimits:
    """The limits' defaults, which the settings' are (and the schema's without settings)."""

    max_query_depth: int = 15
    max_aliases: int = 30
    max_expanded_fields: int = 5000
    max_document_chars: int = 50_000
    max_tokens: int = 5000
    max_query_cost: int = 500_000
    introspection_enabled: bool = True
    production: bool = False


def limit_extensions(settings: LimitSettings) -> list[Any]:
    """Schema extensions (classes or factories) enforcing the configured limits."""
    # The validation rules are made once here, not per request: the validation cache keys on
    # the rule classes, so fresh classes would never hit it.
    rules: list[type[ASTValidationRule]] = []
    if not settings.introspection_enabled:
        rules.append(NoSchemaIntrospectionCustomRule)
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: QueryCostLimiter(settings.max_query_cost),
    ]
    if rules:
        extensions.append(lambda: AddValidationRules(rules))
    if settings.production:
        extensions.append(HideSuggestions)
    return extensions
