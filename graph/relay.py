"""Relay plumbing: the Node interface, connections, and opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Generic, Self, TypeVar

import strawberry

from db.pagination import PageRequest
from db.read_plan import Order, RowGlobalId
from graph.errors import ClientError
from graph.reads import reads, row_values

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

# The arguments every connection and lookup takes, described once.
First = Annotated[int | None, strawberry.argument(description="Page size, 0 to 100.")]
After = Annotated[str | None, strawberry.argument(description="Return items after this cursor.")]
GlobalId = Annotated[strawberry.ID, strawberry.argument(description="Global id.")]


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    """Anything with a global id."""

    id: strawberry.ID = strawberry.field(
        description="Opaque global id.", metadata=reads(RowGlobalId())
    )

    @classmethod
    def from_row(cls, row: Any) -> Self:
        """The GraphQL view of a row, every field read as declared."""
        return cls(**row_values(cls, row))


@strawberry.type(description="Where a page sits in its connection.")
class PageInfo:
    """Relay page information."""

    has_next_page: bool = strawberry.field(description="Whether more items follow this page.")
    has_previous_page: bool = strawberry.field(
        description="Whether items precede this page (true when `after` was given)."
    )
    start_cursor: str | None = strawberry.field(description="Cursor of the first edge.")
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last edge; pass it as `after` for the next page."
    )


@strawberry.type(description="An item of a connection with its cursor.")
class Edge(Generic[T]):
    """A node and where it sits."""

    cursor: str = strawberry.field(description="Opaque keyset cursor of this item.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of items, paginated with keyset cursors.")
class Connection(Generic[T]):
    """A Relay connection."""

    edges: list[Edge[T]] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="Where this page sits.")
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many items match the filter, across all pages.")
    async def total_count(self) -> int:
        return await self.count()


def encode_cursor(order: str, value: Any, key: int) -> str:
    """An opaque cursor for the row ``key`` whose sort value is ``value`` under ``order``."""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    raw = json.dumps([order, text, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_sort_value(text: str, sample_type: type) -> Any:
    if sample_type is datetime:
        return datetime.fromisoformat(text)
    if sample_type is int:
        return int(text)
    if sample_type is date:
        return date.fromisoformat(text)
    if sample_type is Decimal:
        value = Decimal(text)
        if not value.is_finite():
            raise ValueError(text)
        return value
    raise ValueError(sample_type)


def decode_cursor(cursor: str, order: str, value_type: type) -> tuple[Any, int]:
    """(sort value, key) from a cursor made under ``order``; a ClientError otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_order, text, key = json.loads(raw)
        if cursor_order != order:
            raise ClientError("The cursor was made for another ordering; restart without `after`.")
        if not isinstance(key, int) or not isinstance(text, str):
            raise ValueError(cursor)
        return _parse_sort_value(text, value_type), key
    except ClientError:
        raise
    except (binascii.Error, ValueError, TypeError, InvalidOperation, UnicodeDecodeError):
        raise ClientError("`after` is not a valid cursor.") from None


def page_request(
    first: int | None, after: tuple[Any, int] | None, *, descending: bool
) -> PageRequest:
    """Check ``first`` (0 to 100) and build the page request."""
    size = DEFAULT_PAGE_SIZE if first is None else first
    if not 0 <= size <= MAX_PAGE_SIZE:
        raise ClientError(f"`first` must be between 0 and {MAX_PAGE_SIZE}; got {size}.")
    return PageRequest(first=size, after=after, descending=descending)


def row_cursor(order: Order) -> Callable[[Any], str]:
    """The cursor of a row on a page in ``order``."""
    return lambda row: encode_cursor(order.name, getattr(row, order.column), row.id)


def build_connection(
    rows: Sequence[R],
    page: PageRequest,
    *,
    to_node: Callable[[R], T],
    cursor_of: Callable[[R], str],
    count: Callable[[], Awaitable[int]],
) -> Connection[T]:
    """A connection from up to ``first + 1`` rows (the extra row only says more follow)."""
    visible = list(rows[: page.first])
    edges = [Edge(cursor=cursor_of(row), node=to_node(row)) for row in visible]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(rows) > page.first,
            has_previous_page=page.after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        count=count,
    )
