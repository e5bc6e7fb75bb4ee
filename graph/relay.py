"""Relay plumbing: objects made from rows, the Node interface, and the one pagination helper.

Every connection is paginated the same way, as the Relay cursor connections specification
describes: ``paginate`` checks ``first`` / ``last`` and decodes ``after`` / ``before`` into a
``PageArgs`` (filter, page, order), which the per-field path hands to db.repositories.pages and
the compiled path to db.reads.sql; ``connection`` turns the rows of a page into edges with their
keyset cursors, in the connection's order whichever end the page was read from.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar

import strawberry
from sqlalchemy import Date, DateTime, Integer, Numeric
from sqlalchemy.orm import InstrumentedAttribute

from db.pagination import PageRequest
from db.reads.plan import Kind, Order, PageArgs, RowGlobalId
from graph.compiled.reads import reads, row_values
from graph.errors import ClientError
from graph.ids import MAX_KEY, decode_opaque
from graph.loaders import Loaders
from lending.errors import DomainError
from lending.money import to_decimal

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

# The arguments every connection and lookup takes, described once. `first` has no default in
# the schema: a default there would be indistinguishable from a `first` sent beside `last`.
First = Annotated[
    int | None,
    strawberry.argument(
        description=f"Page size from the start, 0 to {MAX_PAGE_SIZE}; {DEFAULT_PAGE_SIZE} when "
        "neither `first` nor `last` is given. Not together with `last`."
    ),
]
After = Annotated[str | None, strawberry.argument(description="Return items after this cursor.")]
Last = Annotated[
    int | None,
    strawberry.argument(
        description=f"Page size from the end, 0 to {MAX_PAGE_SIZE}: the items just before "
        "`before` (or the last ones), still in the connection's order. Not together with `first`."
    ),
]
Before = Annotated[str | None, strawberry.argument(description="Return items before this cursor.")]
GlobalId = Annotated[strawberry.ID, strawberry.argument(description="Global id.")]


class RowView:
    """A GraphQL object made from one row of a table, its fields read as declared.

    A subclass names its table (``class Loan(Node, table="loans")``): relations declared with
    that table resolve to it, and ``node(id:)`` finds it by its GraphQL name.
    """

    TABLE: ClassVar[str]
    _by_table: ClassVar[dict[str, type[RowView]]] = {}
    # The row the object was made from: amounts are written from it in their currency
    # (graph.relations.amount). Not a dataclass field, so never in the schema.
    row: Any = None

    def __init_subclass__(cls, table: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if table is not None:
            cls.TABLE = table
            RowView._by_table[table] = cls

    @classmethod
    def from_row(cls, row: Any) -> Self:
        """The object of a row."""
        made = cls(**row_values(cls, row))
        made.row = row
        return made

    @classmethod
    def of(cls, row: Any | None) -> Self | None:
        """The object of a row, or None for none."""
        return None if row is None else cls.from_row(row)

    @classmethod
    async def load(cls, loaders: Loaders, key: int) -> Self | None:
        """The object with primary key ``key``, through the request's loaders."""
        return cls.of(await loaders.one(cls.TABLE).load(key))

    @staticmethod
    def for_table(table: str) -> type[RowView]:
        """The type made from rows of ``table``."""
        return RowView._by_table[table]

    @staticmethod
    def named(type_name: str) -> type[Node] | None:
        """The Node type called ``type_name`` in the schema, if any."""
        for view in RowView._by_table.values():
            definition = getattr(view, "__strawberry_definition__", None)
            if issubclass(view, Node) and definition is not None and definition.name == type_name:
                return view
        return None


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node(RowView):
    id: strawberry.ID = strawberry.field(
        description="Opaque global id.", metadata=reads(RowGlobalId())
    )


@strawberry.type(description="Where a page sits in its connection.")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="Whether items follow this page. Read with `first` (or neither): whether "
        "more items than the page holds lie between the cursors given (or the ends). Read with "
        "`last`: whether `before` was given (its item follows)."
    )
    has_previous_page: bool = strawberry.field(
        description="Whether items precede this page. Read with `last`: whether more items "
        "than the page holds lie between the cursors given (or the ends). Read with `first` "
        "(or neither): whether `after` was given (its item precedes)."
    )
    start_cursor: str | None = strawberry.field(
        description="Cursor of the first edge; pass it as `before` for the previous page."
    )
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last edge; pass it as `after` for the next page."
    )


@strawberry.type(description="An item of a connection with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque keyset cursor of this item.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of items, paginated with keyset cursors.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits.")
    # How many items match, given the most worth counting (None: all); it may count more.
    count: strawberry.Private[Callable[[int | None], Awaitable[int]]]

    @strawberry.field(
        description="How many items match the filter, across all pages. Counting reads every "
        "match, so over a large list give `atMost`."
    )
    async def total_count(self, at_most: AtMost = None) -> int:
        limit = count_limit(at_most)
        found = await self.count(limit)
        return found if limit is None else min(found, limit)


AtMost = Annotated[
    int | None,
    strawberry.argument(
        description="Stop counting there: the answer is the number of matches or `atMost`, "
        "whichever is smaller (so an answer equal to `atMost` means at least that many), and "
        "costs no more than reading `atMost` rows. Omitted, every match is counted."
    ),
]


def count_limit(at_most: int | None = None) -> int | None:
    """The checked `atMost` of `totalCount`."""
    if at_most is not None and at_most < 0:
        raise ClientError(f"`atMost` must be 0 or more; got {at_most}.")
    return at_most


def encode_cursor(order: str, value: Any, key: int) -> str:
    """An opaque cursor for the row ``key`` whose sort value is ``value`` under ``order``."""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    raw = json.dumps([order, text, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# The longest cursor written (an overdue list's, between two dates) is about 130 characters;
# a longer one is forged, and no longer one can nest deep enough to exhaust the parser's stack.
MAX_CURSOR_LENGTH = 400
BIGINT = range(-(2**63), 2**63)


def _parse_sort_value(text: str, kind: Kind) -> Any:
    """A sort value from its cursor text, within the range of the column it is compared to;
    ValueError otherwise."""
    if kind is Kind.DATETIME:
        # Cursors hold instants in UTC. Any UTC instant Python holds, PostgreSQL holds too;
        # another offset could move it past year 9999, where Python cannot convert it.
        value = datetime.fromisoformat(text)
        if value.utcoffset() != timedelta(0):
            raise ValueError(text)
        return value
    if kind is Kind.INT:
        number = int(text)
        if number not in BIGINT:
            raise ValueError(text)
        return number
    if kind is Kind.DATE:
        return date.fromisoformat(text)
    if kind is Kind.DECIMAL:
        try:
            return to_decimal(text, "after")
        except DomainError:  # not finite, or beyond any amount: no row sorts there
            raise ValueError(text) from None
    raise ValueError(kind)


def decode_cursor(cursor: str, order: Order, argument: str = "after") -> tuple[Any, int]:
    """(sort value, key) from a cursor made under ``order``; a ClientError otherwise.

    A cursor has one spelling, the one ``encode_cursor`` writes: any other text is refused,
    as are values out of their column's range. ``argument`` names the argument the cursor
    came in, for the error message.
    """
    invalid = ClientError(f"`{argument}` is not a valid cursor.")
    raw = decode_opaque(cursor, MAX_CURSOR_LENGTH)
    try:
        parts = json.loads(raw) if raw is not None else None
    except (ValueError, RecursionError):
        raise invalid from None
    if not isinstance(parts, list) or len(parts) != 3 or type(parts[0]) is not str:
        raise invalid
    cursor_order, text, key = parts
    if cursor_order != order.name:
        raise ClientError(
            f"The cursor was made for another ordering; restart without `{argument}`."
        )
    # type(), not isinstance(): JSON's true and false are Python ints.
    if type(text) is not str or type(key) is not int or not 0 < key <= MAX_KEY:
        raise invalid
    try:
        value = _parse_sort_value(text, order.kind)
    except ValueError:
        raise invalid from None
    if encode_cursor(order.name, value, key) != cursor:
        raise invalid
    return value, key


def _kind_of(attribute: InstrumentedAttribute[Any]) -> Kind:
    """How a sort column's value is written in a cursor."""
    column_type = attribute.property.columns[0].type
    if isinstance(column_type, DateTime):
        return Kind.DATETIME
    if isinstance(column_type, Date):
        return Kind.DATE
    if isinstance(column_type, Numeric):
        return Kind.DECIMAL
    if isinstance(column_type, Integer):
        return Kind.INT
    raise TypeError(f"no cursor text for {attribute}")


def paginate(
    first: int | None,
    after: str | None,
    *,
    last: int | None = None,
    before: str | None = None,
    sort: InstrumentedAttribute[Any],
    name: str,
    descending: bool = False,
    filter: Any = None,
) -> PageArgs:
    """The checked arguments of a connection sorted by ``sort`` (ties by id).

    ``name`` is written into every cursor, so that a cursor of another ordering (or, for a
    list whose arguments define it, of other arguments) is refused. ``after`` and ``before``
    may both be given: the page is then taken from the items between them.
    """
    if first is not None and last is not None:
        raise ClientError("Give `first` or `last`, not both: a page is read from one end.")
    order = Order(column=sort.key, kind=_kind_of(sort), name=name)
    start = decode_cursor(after, order, "after") if after else None
    end = decode_cursor(before, order, "before") if before else None
    backward = last is not None
    size = last if last is not None else DEFAULT_PAGE_SIZE if first is None else first
    if not 0 <= size <= MAX_PAGE_SIZE:
        argument = "last" if backward else "first"
        raise ClientError(f"`{argument}` must be between 0 and {MAX_PAGE_SIZE}; got {size}.")
    page = PageRequest(size=size, after=start, before=end, descending=descending, backward=backward)
    return PageArgs(filter, page, order)


def connection(
    rows: Sequence[R],
    args: PageArgs,
    node: Callable[[R], T],
    count: Callable[[int | None], Awaitable[int]],
) -> Connection[T]:
    """A connection from up to ``size + 1`` rows in reading order (see db.pagination).

    The extra row only says more remain at the end the page was read from; a backward page's
    rows are put back in the connection's order.
    """
    page, order = args.page, args.order
    kept = rows[: page.size]
    more = len(rows) > page.size
    if page.backward:
        kept = kept[::-1]
    edges = [
        Edge(cursor=encode_cursor(order.name, getattr(row, order.column), row.id), node=node(row))  # type: ignore[attr-defined]
        for row in kept
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.before is not None if page.backward else more,
            has_previous_page=more if page.backward else page.after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        count=count,
    )
