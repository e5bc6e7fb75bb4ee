"""Checks that apply to every input, whatever its type: text that cannot be stored.

PostgreSQL text cannot hold NUL (U+0000), and a lone UTF-16 surrogate (U+D800–U+DFFF, which
JSON's ``\\ud800`` escapes can produce) cannot be encoded as UTF-8 at all, neither for the
database nor for an idempotency fingerprint. No row can match such a string and none can
store it, so it is bad input wherever it appears. One check finds it: in a mutation's input
(``VALIDATION_FAILED`` on its field, from ``run_mutation``), and in any other operation's
arguments, literal or variable (``BAD_USER_INPUT``, from ``RefuseUnstorableText``; the short
path leaves such a request to it).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    ValueNode,
    get_operation_ast,
)
from strawberry.extensions import SchemaExtension
from strawberry.utils.str_converters import to_camel_case

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
PROBLEM = "must not contain NUL or unpaired UTF-16 surrogates"


def unstorable_field(value: Any, path: str = "") -> str | None:
    """The path of the first string in ``value`` (strings, lists, mappings, input objects)
    that holds text no database can store, if any."""
    if isinstance(value, str):
        return path if _UNSTORABLE.search(value) else None
    if isinstance(value, list | tuple):
        return next((p for v in value if (p := unstorable_field(v, path)) is not None), None)
    if isinstance(value, Mapping):
        items: Iterator[tuple[str, Any]] = ((str(k), v) for k, v in value.items())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = ((to_camel_case(f.name), getattr(value, f.name)) for f in dataclasses.fields(value))
    else:
        return None
    for name, item in items:
        if _UNSTORABLE.search(name):
            return path or name
        found = unstorable_field(item, f"{path}.{name}" if path else name)
        if found is not None:
            return found
    return None


def _literal(node: ValueNode, path: str) -> str | None:
    if isinstance(node, StringValueNode):
        return path if _UNSTORABLE.search(node.value) else None
    if isinstance(node, ListValueNode):
        return next((p for v in node.values if (p := _literal(v, path)) is not None), None)
    if isinstance(node, ObjectValueNode):
        for item in node.fields:
            found = _literal(item.value, f"{path}.{item.name.value}")
            if found is not None:
                return found
    return None


def unstorable_literal(document: DocumentNode, operation: OperationDefinitionNode) -> str | None:
    """The argument path of the first unstorable string written in ``operation`` (its
    arguments and its variables' defaults) or in the document's fragments."""
    for definition in operation.variable_definitions or ():
        if definition.default_value is not None:
            found = _literal(definition.default_value, f"${definition.variable.name.value}")
            if found is not None:
                return found
    fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    stack = [operation.selection_set, *(f.selection_set for f in fragments)]
    while stack:
        for selection in stack.pop().selections:
            for argument in getattr(selection, "arguments", None) or ():
                found = _literal(argument.value, argument.name.value)
                if found is not None:
                    return found
            if getattr(selection, "selection_set", None) is not None:
                stack.append(selection.selection_set)  # type: ignore[attr-defined]
    return None


def unstorable_argument(
    document: DocumentNode, operation: OperationDefinitionNode, variables: Any
) -> str | None:
    """Where ``operation`` (with the document's fragments) or its variables hold unstorable
    text (``$name.path`` for a variable), if anywhere."""
    found = unstorable_field(variables if isinstance(variables, Mapping) else {})
    return f"${found}" if found is not None else unstorable_literal(document, operation)


def refusal(where: str) -> GraphQLError:
    """The top-level error of an operation whose argument ``where`` holds unstorable text."""
    return GraphQLError(f"`{where}` {PROBLEM}.", extensions={"code": "BAD_USER_INPUT"})


class RefuseUnstorableText(SchemaExtension):
    """Answers a query or subscription whose arguments hold unstorable text with
    BAD_USER_INPUT before anything runs (mutations check their input themselves, to answer
    VALIDATION_FAILED on the field)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        operation = get_operation_ast(document, context.operation_name) if document else None
        if document and operation and operation.operation != OperationType.MUTATION:
            where = unstorable_argument(document, operation, context.variables)
            if where is not None:
                context.result = ExecutionResult(data=None, errors=[refusal(where)])
        yield
