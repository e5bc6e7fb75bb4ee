"""Turn a query operation's selection into read plans, and bind a request's arguments to them.

For each root field of a query the planner walks the selection (fragments, inline fragments,
aliases, ``@skip``/``@include``, merged fields: graphql-core's own field collection) and asks
every selected field for the read declared beside it (graph.compiled.reads). A field without
one, an introspection field, a permission the caller's role lacks, or an unusual response key
makes that root field *not compilable*: it runs on the per-field resolvers. Permissions are
decided here, so a plan is cached per (document, operation, role).

Fields with arguments get a *slot*. Binding a request evaluates each slot's arguments exactly
as the executor does (``get_argument_values``, then Strawberry's conversion) and calls the
same checking function the per-field resolver calls: a bad cursor or ``first`` out of range
raises there, and the caller falls back to the per-field path, which then reports the error
the usual way (as it does for text no database can store: graph.inputs).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    Visitor,
    get_named_type,
    get_nullable_type,
    is_list_type,
    visit,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.permission import PermissionExtension
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

from db.reads import plan as rp
from db.reads.sql import Statement
from graph.compiled import reads
from graph.permissions import required_permissions
from graph.relay import count_limit
from lending import clock
from lending.access import Role, role_may
from lending.privacy import Access, Data, access, refused_filter

MAX_KEY_BYTES = 63  # PostgreSQL truncates longer column aliases

_KINDS = {
    "String": rp.Kind.TEXT,
    "ID": rp.Kind.TEXT,
    "Int": rp.Kind.INT,
    "Boolean": rp.Kind.BOOL,
    "Decimal": rp.Kind.DECIMAL,
    "Date": rp.Kind.DATE,
    "DateTime": rp.Kind.DATETIME,
    "JSON": rp.Kind.JSON,
}


class NotCompilable(Exception):
    """The selection reaches something the compiler does not plan."""


@dataclass
class Slot:
    """A field's arguments, and the function that checks them into a bound value.

    A bound value depends only on the values of the variables the arguments read (and on the
    date, for arguments that default to today), so each is remembered by those.
    """

    field_def: GraphQLField
    details: FieldDetails
    bind: Any
    variables: tuple[str, ...]
    bound: dict[bytes, Any] = field(default_factory=dict)
    # A page's: the role whose filters are checked (lending.privacy.refused_filter), and
    # whether it is a borrower's root list, scoped to their rows (its filter's ``owner``).
    role: Role | None = None
    owned: bool = False


@dataclass
class CompiledRoot:
    """A root field's plan, with its statements by shape."""

    root: rp.Root
    slots: tuple[int, ...]
    statements: dict[Any, Statement] = field(default_factory=dict)


@dataclass
class OperationPlan:
    """An operation's root fields: compiled ones by response key, and the others' keys."""

    compiled: dict[str, CompiledRoot]
    others: tuple[str, ...]
    slots: dict[int, Slot]
    order: tuple[str, ...]  # every root response key, in selection order
    statements: dict[Any, Statement] = field(default_factory=dict)  # of whole-data statements

    @property
    def complete(self) -> bool:
        """Whether every root field compiles (the whole answer is one statement)."""
        return not self.others and bool(self.reading)

    @property
    def reading(self) -> tuple[str, ...]:
        """The compiled root fields that read something (not a mere ``__typename``)."""
        return tuple(
            key
            for key in self.order
            if key in self.compiled and not isinstance(self.compiled[key].root, rp.Const)
        )


class Planner:
    """Plans the root fields of one operation for one role."""

    def __init__(
        self,
        schema: GraphQLSchema,
        converter: Any,
        fragments: dict[str, FragmentDetails],
        variables: VariableValues,
        operation: OperationDefinitionNode,
        role: Role,
    ) -> None:
        self.schema = schema
        self.converter = converter
        self.fragments = fragments
        self.variables = variables
        self.operation = operation
        self.role = role
        self.slots: dict[int, Slot] = {}

    def plan(self) -> OperationPlan:
        """Plan every root field; those that cannot be compiled are listed apart."""
        compiled: dict[str, CompiledRoot] = {}
        others: list[str] = []
        order: list[str] = []
        query = self.schema.query_type
        if self.operation.operation is not OperationType.QUERY or query is None:
            return OperationPlan({}, (), {}, ())
        collected = collect_fields(
            self.schema, self.fragments, self.variables, query, self.operation
        )
        for key, details in collected.grouped_field_set.items():
            order.append(key)
            before = set(self.slots)
            try:
                root = self.root(query, key, details)
            except NotCompilable:
                others.append(key)
                for slot in set(self.slots) - before:
                    del self.slots[slot]
                continue
            compiled[key] = CompiledRoot(root, tuple(sorted(set(self.slots) - before)))
        return OperationPlan(compiled, tuple(others), dict(self.slots), tuple(order))

    def same_as(
        self, parent: GraphQLObjectType, key: str, details: list[FieldDetails]
    ) -> tuple[OperationPlan, int]:
        """The plan of a field declared ``SameAs`` (an event's object): its only root field is
        ``key``, read as the root query field it names reads, for the id bound to the slot
        returned (bound by the caller, not from arguments)."""
        _check_key(key)
        field_def, declaration = self.declaration(parent, details)
        if not isinstance(declaration, reads.SameAs):
            raise NotCompilable(f"{parent.name}.{details[0].node.name.value}: not SameAs")
        query = self.schema.query_type
        assert query is not None
        root_def = query.fields[declaration.root]
        needed = required_permissions(root_def)
        if needed is None or not all(role_may(self.role, p) for p in needed):
            raise NotCompilable(f"Query.{declaration.root}: permission")
        root_declaration = root_def.extensions["strawberry-definition"].metadata.get(reads.READS)
        slot = self.slot(field_def, details, declaration.key)
        root: rp.Root
        if isinstance(root_declaration, reads.ById):
            target = get_named_type(field_def.type)
            assert isinstance(target, GraphQLObjectType)
            obj = self.object(target, details, None)
            root = rp.ById(root_declaration.table, slot, obj, self.owned)
        elif isinstance(root_declaration, reads.AnyNode) and not root_declaration.many:
            # A field of one object type (a payload's payment) reads only that type's rows;
            # a field of the Node interface (an event's entity), whichever its key names.
            target = get_named_type(field_def.type)
            tables = root_declaration.tables
            names = [target.name] if target.name in tables else list(tables)
            root = rp.NodeById(
                tuple(
                    rp.NodeCase(
                        name, tables[name], self.object(self.object_type(name), details, None)
                    )
                    for name in names
                ),
                slot,
                owned=self.owned,
            )
        else:
            raise NotCompilable(f"Query.{declaration.root}: not by id")
        others = tuple(sorted(set(self.slots) - {slot}))
        plan = OperationPlan({key: CompiledRoot(root, others)}, (), dict(self.slots), (key,))
        return plan, slot

    @property
    def owned(self) -> bool:
        """Whether roots read only the caller's own rows (a borrower's: rp.OWNER_SLOT)."""
        return self.role is Role.BORROWER

    # ---- helpers ---------------------------------------------------------------------------

    def definition(
        self, parent: GraphQLObjectType, details: list[FieldDetails]
    ) -> tuple[GraphQLField, StrawberryField]:
        node = details[0].node
        if any(d.fragment_variable_values is not None or d.defer_usage for d in details):
            raise NotCompilable("fragment variables or @defer")
        field_def = parent.fields.get(node.name.value)
        if field_def is None:
            raise NotCompilable(node.name.value)
        strawberry_field = (field_def.extensions or {}).get("strawberry-definition")
        if not isinstance(strawberry_field, StrawberryField):
            raise NotCompilable(node.name.value)
        if any(not isinstance(e, PermissionExtension) for e in strawberry_field.extensions):
            raise NotCompilable(f"{parent.name}.{node.name.value}: field extension")
        needed = required_permissions(field_def)
        if needed is None or not all(role_may(self.role, p) for p in needed):
            raise NotCompilable(f"{parent.name}.{node.name.value}: permission")
        return field_def, strawberry_field

    def slot(self, field_def: GraphQLField, details: list[FieldDetails], bind: Any) -> int:
        number = len(self.slots) + 1
        while number in self.slots:
            number += 1
        self.slots[number] = Slot(field_def, details[0], bind, _variables_in(details[0].node))
        return number

    def declaration(
        self, parent: GraphQLObjectType, details: list[FieldDetails]
    ) -> tuple[GraphQLField, reads.Declaration]:
        field_def, strawberry_field = self.definition(parent, details)
        declaration = strawberry_field.metadata.get(reads.READS)
        if declaration is None:
            raise NotCompilable(f"{parent.name}.{details[0].node.name.value}: no declaration")
        return field_def, declaration

    # ---- roots -----------------------------------------------------------------------------

    def root(self, query: GraphQLObjectType, key: str, details: list[FieldDetails]) -> rp.Root:
        _check_key(key)
        if details[0].node.name.value == "__typename":
            return rp.Const(_json(query.name))
        if details[0].node.name.value.startswith("__"):
            raise NotCompilable("introspection")
        field_def, declaration = self.declaration(query, details)
        target = get_named_type(field_def.type)
        if isinstance(declaration, reads.ById):
            slot = self.slot(field_def, details, declaration.bind)
            assert isinstance(target, GraphQLObjectType)
            obj = self.object(target, details, None)
            return rp.ById(declaration.table, slot, obj, self.owned)
        if isinstance(declaration, reads.AnyNode):
            slot = self.slot(field_def, details, declaration.bind)
            cases = tuple(
                rp.NodeCase(name, table, self.object(self.object_type(name), details, None))
                for name, table in declaration.tables.items()
            )
            return rp.NodeById(cases, slot, declaration.many, self.owned)
        if isinstance(declaration, reads.Listed):
            slot = self.slot(field_def, details, declaration.bind)
            assert isinstance(target, GraphQLObjectType)
            obj = self.object(target, details, None)
            return rp.Ordered(declaration.table, declaration.order, slot, obj)
        if isinstance(declaration, reads.Page):
            return self.connection(field_def, declaration, details, None)
        if isinstance(declaration, reads.Viewer):
            assert isinstance(target, GraphQLObjectType)
            return rp.Single(self.object(target, details, None))
        raise NotCompilable(f"Query.{details[0].node.name.value}")

    def object_type(self, name: str) -> GraphQLObjectType:
        found = self.schema.get_type(name)
        assert isinstance(found, GraphQLObjectType), name
        return found

    # ---- objects ---------------------------------------------------------------------------

    def object(
        self, object_type: GraphQLObjectType, details: list[FieldDetails], scope: int | None
    ) -> rp.Obj:
        """The object of ``object_type`` selected by the sub-selections of ``details``."""
        collected = collect_subfields(
            self.schema, self.fragments, self.variables, self.operation, object_type, details
        )
        fields = tuple(
            (key, self.value(object_type, key, sub, scope))
            for key, sub in collected.grouped_field_set.items()
        )
        return rp.Obj(fields)

    def value(
        self, parent: GraphQLObjectType, key: str, details: list[FieldDetails], scope: int | None
    ) -> rp.Value:
        _check_key(key)
        name = details[0].node.name.value
        if name == "__typename":
            return rp.Const(_json(parent.name))
        field_def, declaration = self.declaration(parent, details)
        if isinstance(declaration, reads.Personal):
            restricted = self.personal(parent, name, declaration)
            if restricted is not None:
                return restricted
            declaration = declaration.read
        if isinstance(declaration, rp.Money):
            value = self.read(parent, details, scope, field_def, declaration.value)
            return rp.Money(value, declaration.currency)
        return self.read(parent, details, scope, field_def, declaration)

    def personal(
        self, parent: GraphQLObjectType, name: str, declaration: reads.Personal
    ) -> rp.Value | None:
        """Personal data as the role sees it (lending.privacy): null, masked in SQL, or None
        when the role sees it in full (then it is read as declared)."""
        seen = access(self.role, declaration.data)
        if seen is Access.FULL:
            return None
        if declaration.data is Data.OTHERS_REQUESTS:  # depends on the caller, not the role
            raise NotCompilable(f"{parent.name}.{name}: whose request")
        if seen is Access.HIDDEN:
            return rp.Const("null")
        if declaration.mask is None or not isinstance(declaration.read, rp.Column):
            raise NotCompilable(f"{parent.name}.{name}: masked per value")
        return rp.Masked(declaration.read, declaration.mask.value)

    def read(
        self,
        parent: GraphQLObjectType,
        details: list[FieldDetails],
        scope: int | None,
        field_def: GraphQLField,
        declaration: Any,
    ) -> rp.Value:
        """The plan of a field's declared read."""
        name = details[0].node.name.value
        named = get_named_type(field_def.type)
        takes_arguments = bool(details[0].node.arguments) or bool(field_def.args)
        if isinstance(declaration, rp.Column | rp.Total | rp.IsSet | rp.TextGlobalId):
            if takes_arguments:
                raise NotCompilable(f"{parent.name}.{name}: arguments")
            if isinstance(declaration, rp.Column):
                # A list held in one column is a JSON array column (an assessment's evidence).
                listed = is_list_type(get_nullable_type(field_def.type))
                return rp.Column(declaration.name, rp.Kind.JSON if listed else _kind(named))
            return declaration
        if isinstance(declaration, rp.RowGlobalId):
            return rp.RowGlobalId(parent.name)
        if isinstance(declaration, reads.ByStatus):
            cases = tuple(
                (member.value, _json([item.name for item in declaration.values(member)]))
                for member in declaration.enum
            )
            return rp.ByValue(declaration.column, cases)
        if isinstance(declaration, reads.Compute):
            slot = None
            if declaration.from_parent:
                if scope is None:
                    raise NotCompilable(f"{parent.name}.{name}: no date in scope")
                slot = scope
            elif declaration.bind is not None:
                slot = self.slot(field_def, details, declaration.bind)
            return rp.Computed(declaration.computation, slot)
        if isinstance(declaration, rp.SumOf):
            return declaration
        if isinstance(declaration, reads.Page):
            return self.connection(field_def, declaration, details, parent)
        if isinstance(declaration, reads.Caller):
            if declaration.what == "role":
                return rp.Const(_json(self.role.value))
            return rp.CallerName()
        if isinstance(declaration, reads.OwnPage):
            connection = self.connection(field_def, declaration.page, details, None)
            self.slots[connection.slot].owned = True
            return connection
        assert isinstance(named, GraphQLObjectType), f"{parent.name}.{name}"
        if isinstance(declaration, reads.OwnApplicant):
            return rp.OwnApplicant(self.object(named, details, None))
        if isinstance(declaration, rp.ToOne):
            return rp.One(declaration, self.object(named, details, scope))
        if isinstance(declaration, rp.ToMany):
            return rp.Many(declaration, self.object(named, details, scope))
        if isinstance(declaration, reads.Embedded):
            own = self.slot(field_def, details, declaration.bind) if declaration.bind else None
            obj = self.object(named, details, own if own is not None else scope)
            return rp.Embedded(obj, declaration.when)
        if isinstance(declaration, reads.OldestOverdue):
            if scope is None:
                raise NotCompilable(f"{parent.name}.{name}: no date in scope")
            return rp.OldestOverdue(scope, self.object(named, details, None))
        raise NotCompilable(f"{parent.name}.{name}")

    # ---- connections -----------------------------------------------------------------------

    def connection(
        self,
        field_def: GraphQLField,
        declaration: reads.Page,
        details: list[FieldDetails],
        parent: GraphQLObjectType | None,
    ) -> rp.Connection:
        if parent is not None and declaration.local is None:
            raise NotCompilable("a nested connection needs a link")
        slot = self.slot(field_def, details, declaration.bind)
        self.slots[slot].role = self.role
        self.slots[slot].owned = parent is None and self.role is Role.BORROWER
        connection_type = _object(field_def)
        edge_type = _object(connection_type.fields["edges"])
        node_type = _object(edge_type.fields["node"])
        info_type = _object(connection_type.fields["pageInfo"])
        edge_parts = {
            "cursor": lambda _: rp.EdgeCursor(),
            "node": lambda sub: rp.EdgeNode(self.object(node_type, sub, None)),
        }
        info_parts = {name: (lambda _, part=part: part) for name, part in _PAGE_INFO.items()}
        parts = self.parts(
            connection_type,
            details,
            {
                "totalCount": lambda sub: self.total_count(connection_type, sub),
                "edges": lambda sub: rp.Edges(self.parts(edge_type, sub, edge_parts)),
                "pageInfo": lambda sub: rp.PageInfo(self.parts(info_type, sub, info_parts)),
            },
        )
        return rp.Connection(declaration.domain, slot, parts, declaration.local, declaration.remote)

    def total_count(self, owner: GraphQLObjectType, details: list[FieldDetails]) -> Any:
        """``totalCount``; given ``atMost``, a slot holds it."""
        if not details[0].node.arguments:
            return rp.TotalCount()
        field_def = owner.fields["totalCount"]
        return rp.TotalCount(self.slot(field_def, details, count_limit))

    def parts(
        self,
        owner: GraphQLObjectType,
        details: list[FieldDetails],
        known: Mapping[str, Callable[[list[FieldDetails]], Any]],
    ) -> tuple[tuple[str, Any], ...]:
        """The parts of a connection, an edge or a page info selected in ``details``."""
        collected = collect_subfields(
            self.schema, self.fragments, self.variables, self.operation, owner, details
        )
        found: list[tuple[str, Any]] = []
        for key, sub in collected.grouped_field_set.items():
            _check_key(key)
            name = sub[0].node.name.value
            if name == "__typename":
                found.append((key, rp.Const(_json(owner.name))))
            elif name in known:
                found.append((key, known[name](sub)))
            else:
                raise NotCompilable(f"{owner.name}.{name}")
        return tuple(found)


def _object(field_def: GraphQLField) -> GraphQLObjectType:
    named = get_named_type(field_def.type)
    assert isinstance(named, GraphQLObjectType)
    return named


_PAGE_INFO = {
    "hasNextPage": rp.PageInfoPart.HAS_NEXT_PAGE,
    "hasPreviousPage": rp.PageInfoPart.HAS_PREVIOUS_PAGE,
    "startCursor": rp.PageInfoPart.START_CURSOR,
    "endCursor": rp.PageInfoPart.END_CURSOR,
}


def _json(value: Any) -> str:
    """Compact JSON text, as the response encoder writes it."""
    return json.dumps(value, separators=(",", ":"))


def _check_key(key: str) -> None:
    if len(key.encode()) > MAX_KEY_BYTES or not key.isascii():
        raise NotCompilable(f"response key {key[:20]}…")


def _kind(named: GraphQLNamedType) -> rp.Kind:
    if isinstance(named, GraphQLEnumType):
        if any(name != value.value for name, value in named.values.items()):
            raise NotCompilable(f"{named.name}: names differ from stored values")
        return rp.Kind.TEXT
    if isinstance(named, GraphQLScalarType) and named.name in _KINDS:
        return _KINDS[named.name]
    raise NotCompilable(f"scalar {named.name}")


MAX_BOUND = 256  # bound values remembered per slot
NOBODY = ""  # the owner of a staff caller's own lists: no applicant has this email


def bind(
    operation_plan: OperationPlan,
    slots: tuple[int, ...],
    variables: VariableValues,
    converter: Any,
    config: Any,
    owner: str | None = None,
    caller: str | None = None,
) -> dict[int, Any]:
    """The bound value of each slot for one request; raises where the per-field path fails.

    ``owner`` is a borrower's email: it goes in rp.OWNER_SLOT, and into their own lists'
    filters (staff have none: their own lists, ``viewer``'s, are empty); ``caller`` is the
    caller's name (rp.CALLER_SLOT).
    """
    bound: dict[int, Any] = {rp.OWNER_SLOT: owner or NOBODY, rp.CALLER_SLOT: caller}
    today = clock.today()
    for number in slots:
        slot = operation_plan.slots[number]
        values = [variables.coerced.get(name) for name in slot.variables]
        key = orjson.dumps([today, values, owner if slot.owned else None], default=repr)
        if key not in slot.bound:
            raw = get_argument_values(slot.field_def, slot.details.node, variables)
            strawberry_field = slot.field_def.extensions["strawberry-definition"]
            kwargs = convert_arguments(
                raw, strawberry_field.arguments, scalar_registry=converter, config=config
            )
            value = slot.bind(**kwargs)
            if slot.role is not None and refused_filter(slot.role, value.filter):
                raise NotCompilable("a filter on personal data: the per-field path refuses it")
            if slot.owned:
                value = value.owned_by(owner or NOBODY)
            if len(slot.bound) >= MAX_BOUND:
                slot.bound.clear()
            slot.bound[key] = value
        bound[number] = slot.bound[key]
    return bound


class _Variables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        self.names.add(node.name.value)


def _variables_in(node: FieldNode) -> tuple[str, ...]:
    """The variables a field's arguments read."""
    visitor = _Variables()
    for argument in node.arguments or ():
        visit(argument, visitor)
    return tuple(sorted(visitor.names))
