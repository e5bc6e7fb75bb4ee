"""What each GraphQL field reads, declared beside the field.

Both execution paths use the declaration: the per-field path builds an object's plain fields
from a row with ``row_values`` and binds arguments with the same functions as the compiler;
the read compiler (graph.compiled.planner) turns the declarations under a selection into a read
plan that db.reads.sql renders into one statement. A field without a declaration is not
compilable: a root field whose selection reaches one runs on the per-field path.

Declarations of plain values are the leaves of db.reads.plan (``Column``, ``Total``, ``IsSet``,
``TextGlobalId``); the ones below add what only a selection can complete (the related object's
selection, a page's arguments) and are planned by graph.compiled.planner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from operator import attrgetter
from typing import Any

import strawberry

from db.reads.plan import (
    Column,
    Computation,
    Domain,
    IsSet,
    Money,
    RowGlobalId,
    SumOf,
    TextGlobalId,
    ToMany,
    ToOne,
    Total,
)
from lending.privacy import Data, Mask

READS = "reads"  # the key of the declaration in a Strawberry field's metadata

Leaf = Column | Total | IsSet | TextGlobalId | RowGlobalId


@dataclass(frozen=True)
class Embedded:
    """Another object made from this row (null unless ``when`` is set).

    ``bind`` turns the field's arguments into the date its fields are assessed on.
    """

    when: str | None = None
    bind: Callable[..., Any] | None = None


@dataclass(frozen=True)
class Compute:
    """A value computed from related rows (see db.reads.plan.Computation).

    ``bind`` turns the field's arguments into the date it is assessed on; ``from_parent`` takes
    the date of the enclosing embedded object instead.
    """

    computation: Computation
    bind: Callable[..., Any] | None = None
    from_parent: bool = False


@dataclass(frozen=True)
class OldestOverdue:
    """The oldest instalment overdue on the enclosing object's date."""


@dataclass(frozen=True)
class ByStatus:
    """A value chosen by the row's status: ``values(status)`` for every member of ``enum``."""

    column: str
    enum: Any
    values: Callable[[Any], Any]


@dataclass(frozen=True)
class Page:
    """A connection over ``domain``; ``bind`` checks its arguments into a ``PageArgs``."""

    domain: Domain
    bind: Callable[..., Any]
    local: str | None = None
    remote: str | None = None


@dataclass(frozen=True)
class ById:
    """A root field: one row of ``table`` by global id (``bind`` gives its key or None)."""

    table: str
    bind: Callable[..., int | None]


@dataclass(frozen=True)
class AnyNode:
    """A root field: any objects by global id (``node``, ``nodes``).

    ``tables`` names the table of every type it can return; ``bind`` gives (type name, key)
    or None per id.
    """

    tables: Mapping[str, str]
    bind: Callable[..., Any]
    many: bool = False


@dataclass(frozen=True)
class Listed:
    """A root field: the rows of ``table`` in ``order``; ``bind`` gives whether only active."""

    table: str
    order: tuple[tuple[str, bool], ...]
    bind: Callable[..., bool]


@dataclass(frozen=True)
class Viewer:
    """A root field: who asks (``viewer``), an object of the caller's own."""


@dataclass(frozen=True)
class Caller:
    """The caller's name or role (``what``)."""

    what: str


@dataclass(frozen=True)
class OwnApplicant:
    """The caller's own applicant: a borrower's (null for staff)."""


@dataclass(frozen=True)
class OwnPage:
    """A connection over the caller's own rows of ``page``'s domain (none for staff)."""

    page: Page


@dataclass(frozen=True)
class Personal:
    """Personal data of kind ``data``: ``read`` (a column, an amount, rows) as the caller's role
    may see it (lending.privacy): in full, masked by ``mask``, or null."""

    read: Any
    data: Data
    mask: Mask | None = None


@dataclass(frozen=True)
class SameAs:
    """What root query field ``root`` (``application``, ``loan``, ``node``) reads, for the id
    this object holds: ``key(obj)`` is that root field's bound value (a key, or for ``node``
    a type name and key; None: null). An event's objects are read this way."""

    root: str
    key: Callable[[Any], Any]


def _as_node(view: Any) -> tuple[str, int]:
    """(type name, key) of a row's GraphQL object."""
    return view.__strawberry_definition__.name, view.key


# A mutation payload's object field: once the mutation is done, its selection is read as
# node(id:) reads that object (graph.compiled.executor), identical to the per-field answer.
AS_NODE = SameAs("node", _as_node)


Declaration = (
    Leaf
    | Money
    | ToOne
    | ToMany
    | SumOf
    | Embedded
    | Compute
    | OldestOverdue
    | ByStatus
    | Page
    | ById
    | AnyNode
    | Listed
    | SameAs
    | Personal
    | Viewer
    | Caller
    | OwnApplicant
    | OwnPage
)


def reads(declaration: Declaration) -> dict[str, Declaration]:
    """Field metadata declaring what a resolver field reads."""
    return {READS: declaration}


def column(name: str, description: str) -> Any:
    """A field holding the value of a column of the type's row."""
    return strawberry.field(description=description, metadata=reads(Column(name)))


def derived(read: Total | IsSet | TextGlobalId, description: str) -> Any:
    """A field holding a value derived from the type's row alone."""
    return strawberry.field(description=description, metadata=reads(read))


def private(name: str) -> Any:
    """A private field (never in the schema) holding a column of the type's row."""
    return dataclasses.field(metadata=reads(Column(name)))


@cache
def _leaves(cls: type) -> tuple[tuple[str, Leaf], ...]:
    type_name = cls.__strawberry_definition__.name  # type: ignore[attr-defined]
    found: list[tuple[str, Leaf]] = []
    for field in dataclasses.fields(cls):
        if getattr(field, "base_resolver", None) is not None:
            continue
        declaration = field.metadata.get(READS)
        if isinstance(declaration, RowGlobalId):
            found.append((field.name, RowGlobalId(type_name)))
        elif isinstance(declaration, Column | Total | IsSet | TextGlobalId):
            found.append((field.name, declaration))
    return tuple(found)


@cache
def _reader(cls: type) -> Callable[[Any], dict[str, Any]]:
    """A function reading ``cls``'s plain fields from a row: columns in one attrgetter."""
    leaves = _leaves(cls)
    columns = [(name, leaf.name) for name, leaf in leaves if type(leaf) is Column]
    derived = [(name, leaf) for name, leaf in leaves if type(leaf) is not Column]
    names = [name for name, _ in columns]
    get = attrgetter(*(column for _, column in columns)) if columns else None

    def read(row: Any) -> dict[str, Any]:
        found = get(row) if get is not None else ()
        values = dict(zip(names, found if len(names) > 1 else (found,), strict=True))
        for name, leaf in derived:
            values[name] = leaf.read(row)
        return values

    return read


def row_values(cls: type, row: Any) -> dict[str, Any]:
    """Every field of ``cls`` that is not resolved, read from ``row`` by its declaration."""
    return _reader(cls)(row)


@cache
def attribute_of(cls: type, column_name: str) -> str:
    """The attribute of ``cls``'s objects that holds its row's column ``column_name``."""
    for name, leaf in _leaves(cls):
        if type(leaf) is Column and leaf.name == column_name:
            return name
    raise LookupError(f"{cls.__name__} keeps no column {column_name}")
