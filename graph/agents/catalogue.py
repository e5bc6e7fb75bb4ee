"""The catalogue: the GraphQL operations agents, tools and the README use, one file each.

Each file in ``graph/agents/operations/`` holds one named operation, introduced by ``#`` lines
that say what it does. From the file and the schema the catalogue derives everything a tool
needs, so nothing is written twice: the document's sha256 (how a persisted operation is sent),
the roles whose permissions cover every field it selects, and a JSON schema of its variables
with the schema's own descriptions. An operation whose only variable is ``$input`` takes the
input's fields as its tool arguments."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    Undefined,
    Visitor,
    ast_from_value,
    parse,
    print_ast,
    type_from_ast,
    validate,
    value_from_ast_untyped,
    visit,
)

from graph.permissions import required_permissions
from lending.access import Permission, Role, role_may

OPERATIONS = Path(__file__).with_name("operations")

# Scalars as JSON: amounts are exact decimal strings, never JSON numbers.
_SCALARS: dict[str, dict[str, Any]] = {
    "ID": {"type": "string"},
    "String": {"type": "string"},
    "Boolean": {"type": "boolean"},
    "Int": {"type": "integer"},
    "Float": {"type": "number"},
    "Decimal": {"type": "string", "description": 'An exact decimal as a string, e.g. "2500.00".'},
    "Date": {"type": "string", "format": "date"},
    "DateTime": {"type": "string", "format": "date-time"},
    "JSON": {},
}


class CatalogueError(ValueError):
    """A catalogue file that is not one valid, described, named operation."""


@dataclass(frozen=True)
class Operation:
    """One catalogue document, and what a tool made of it needs."""

    name: str  # the file's stem, and the tool's name
    operation_name: str
    kind: str  # query, mutation or subscription
    description: str
    document: str
    sha256: str
    roles: frozenset[Role]
    about: str  # the description of the root field it calls
    input_schema: dict[str, Any] = field(compare=False)
    takes_input: bool  # the tool's arguments are the fields of ``$input``

    @property
    def is_tool(self) -> bool:
        """Subscriptions are streams, not tool calls."""
        return self.kind != "subscription"

    def variables(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """The GraphQL variables for a tool call's ``arguments``."""
        return {"input": dict(arguments or {})} if self.takes_input else dict(arguments or {})

    def request(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """A GraphQL request running this operation as a persisted one (by its hash)."""
        return {
            "documentId": f"sha256:{self.sha256}",
            "operationName": self.operation_name,
            "variables": self.variables(arguments),
        }


class Catalogue:
    """The operations by name and by hash."""

    def __init__(self, operations: Iterable[Operation]) -> None:
        self.operations = tuple(sorted(operations, key=lambda op: op.name))
        self.by_name = {op.name: op for op in self.operations}
        self.by_hash = {op.sha256: op for op in self.operations}
        self.printed = frozenset(print_ast(parse(op.document)) for op in self.operations)

    def tools(self, role: Role | None = None) -> list[Operation]:
        """The operations callable as tools, by ``role`` when given."""
        return [op for op in self.operations if op.is_tool and (role is None or role in op.roles)]

    def document(self, sha256: str) -> str | None:
        """The text of the catalogue document with this hash (hex, optionally ``sha256:``)."""
        operation = self.by_hash.get(sha256.removeprefix("sha256:").lower())
        return operation.document if operation else None

    def holds(self, document: DocumentNode) -> bool:
        """Whether ``document`` is one of the catalogue's (layout and comments aside)."""
        return print_ast(document) in self.printed


def digest(document: str) -> str:
    """The sha256 (hex) by which a document is sent as a persisted operation."""
    return hashlib.sha256(document.encode()).hexdigest()


@cache
def catalogue(schema: GraphQLSchema, folder: Path = OPERATIONS) -> Catalogue:
    """The catalogue of ``folder``, checked against ``schema`` (loaded once per schema)."""
    return Catalogue(load(schema, path) for path in sorted(folder.glob("*.graphql")))


def load(schema: GraphQLSchema, path: Path) -> Operation:
    """One catalogue file, validated against ``schema``."""
    text = path.read_text()
    comments = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        comments.append(line.lstrip("#").strip())
    description = " ".join(comments).strip()
    if not description:
        raise CatalogueError(f"{path.name}: start with '#' lines saying what it does")
    document = parse(text)
    errors = validate(schema, document)
    if errors:
        raise CatalogueError(f"{path.name}: {'; '.join(e.message for e in errors)}")
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].name is None:
        raise CatalogueError(f"{path.name}: hold exactly one named operation")
    operation, name = operations[0], operations[0].name.value
    walk = _Walk(schema)
    visit(document, TypeInfoVisitor(walk.type_info, walk))
    variables = operation.variable_definitions or ()
    takes_input = (
        len(variables) == 1
        and variables[0].variable.name.value == "input"
        and isinstance(_named(type_from_ast(schema, variables[0].type)), GraphQLInputObjectType)
    )
    if takes_input:
        input_schema = _object_schema(_named(type_from_ast(schema, variables[0].type)))
    else:
        input_schema = _variables_schema(schema, operation, walk.descriptions)
    return Operation(
        name=path.stem,
        operation_name=name,
        kind=operation.operation.value,
        description=description,
        document=text,
        sha256=digest(text),
        roles=frozenset(r for r in Role if all(role_may(r, p) for p in walk.permissions)),
        about=walk.about,
        input_schema=input_schema,
        takes_input=takes_input,
    )


class _Walk(Visitor):
    """Collects the permissions of every field selected and the descriptions of variables."""

    def __init__(self, schema: GraphQLSchema) -> None:
        super().__init__()
        self.type_info = TypeInfo(schema)
        self.permissions: set[Permission] = set()
        self.descriptions: dict[str, str] = {}
        self.about = ""
        self.roots = {
            t for t in (schema.query_type, schema.mutation_type, schema.subscription_type)
        }

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        definition = self.type_info.get_field_def()
        if definition is not None:
            if self.type_info.get_parent_type() in self.roots and not self.about:
                self.about = definition.description or ""
            needed = required_permissions(definition)
            if needed is None:
                raise CatalogueError(f"{node.name.value}: a guard the catalogue does not know")
            self.permissions |= needed

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        argument = self.type_info.get_argument()
        value = node.value
        if argument is not None and value.kind == "variable" and argument.description:
            self.descriptions.setdefault(value.name.value, argument.description)  # type: ignore[attr-defined]


def _variables_schema(
    schema: GraphQLSchema, operation: OperationDefinitionNode, descriptions: dict[str, str]
) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        graphql_type = type_from_ast(schema, definition.type)
        assert graphql_type is not None  # the document validated
        prop = _described(_type_schema(graphql_type), descriptions.get(name))  # type: ignore[arg-type]
        if definition.default_value is not None:
            prop["default"] = value_from_ast_untyped(definition.default_value)
        elif isinstance(graphql_type, GraphQLNonNull):
            required.append(name)
        properties[name] = prop
    return _object(properties, required)


def _object_schema(
    input_type: GraphQLInputObjectType, seen: tuple[str, ...] = ()
) -> dict[str, Any]:
    if input_type.name in seen:
        raise CatalogueError(f"{input_type.name} refers to itself; tools need plain inputs")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, input_field in input_type.fields.items():
        prop = _described(
            _type_schema(input_field.type, (*seen, input_type.name)), input_field.description
        )
        if input_field.default_value is not Undefined:
            default = ast_from_value(input_field.default_value, input_field.type)
            if default is not None and default.kind != "null_value":
                prop["default"] = value_from_ast_untyped(default)
        elif isinstance(input_field.type, GraphQLNonNull):
            required.append(name)
        properties[name] = prop
    described = _object(properties, required)
    if input_type.description:
        described["description"] = input_type.description
    return described


def _described(schema: dict[str, Any], description: str | None) -> dict[str, Any]:
    """``schema`` described by ``description``, followed by what its type says (if anything)."""
    if description:
        schema["description"] = " ".join(filter(None, (description, schema.get("description"))))
    return schema


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def _type_schema(graphql_type: GraphQLInputType, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON schema of a GraphQL input type; a nullable type also takes null."""
    if isinstance(graphql_type, GraphQLNonNull):
        return _non_null_schema(graphql_type.of_type, seen)
    schema = _non_null_schema(graphql_type, seen)
    if "type" in schema:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return schema


def _non_null_schema(graphql_type: Any, seen: tuple[str, ...]) -> dict[str, Any]:
    if isinstance(graphql_type, GraphQLList):
        return {"type": "array", "items": _type_schema(graphql_type.of_type, seen)}
    if isinstance(graphql_type, GraphQLInputObjectType):
        return _object_schema(graphql_type, seen)
    if isinstance(graphql_type, GraphQLEnumType):
        schema: dict[str, Any] = {"type": "string", "enum": list(graphql_type.values)}
        if graphql_type.description:
            schema["description"] = graphql_type.description
        return schema
    assert isinstance(graphql_type, GraphQLScalarType)
    return dict(_SCALARS[graphql_type.name])


def _named(graphql_type: Any) -> Any:
    while isinstance(graphql_type, GraphQLNonNull | GraphQLList):
        graphql_type = graphql_type.of_type
    return graphql_type
