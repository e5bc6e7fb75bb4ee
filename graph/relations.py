"""Relations and pages: per-field resolvers of declared reads, so each is written once.

``to_one`` and ``to_many`` make a field from its db.reads.plan link (table, columns, order):
the compiled path renders the link as a join, and the resolver here loads it through the
request's batched loaders and builds the related type's objects (the type made from rows of
that table), so a type needs no import of the types it links to. ``page_of`` does the same
for connections, from their ``Page`` declaration, and ``lookup`` for a root field by id.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry

from db.reads.plan import Column, Money, PageArgs, ToMany, ToOne, Total
from db.repositories import pages
from graph.compiled.reads import ById, Page, Personal, attribute_of, reads
from graph.context import Info
from graph.ids import key_for
from graph.loaders import Nested
from graph.permissions import Guard
from graph.relay import Connection, GlobalId, Node, RowView, connection
from graph.scope import checked_filter, scoped, visible
from lending.money import as_written
from lending.privacy import Access, Data, Mask, access, describe, shown


def _local(root: Any, column: str) -> Any:
    view: type = type(root)
    return getattr(root, attribute_of(view, column))


def to_one(link: ToOne, description: str) -> Any:
    """A field holding the row of ``link.table`` linked to this object's row (or null)."""

    async def resolve(root: Any, info: Info) -> Any:
        row = await info.context.loaders.one(link.table, link.remote).load(_local(root, link.local))
        return RowView.for_table(link.table).of(row)

    return strawberry.field(resolver=resolve, description=description, metadata=reads(link))


def to_many(link: ToMany, description: str) -> Any:
    """A field holding the rows of ``link.table`` linked to this object's row, in order."""

    async def resolve(root: Any, info: Info) -> Any:
        rows = await info.context.loaders.many(link).load(_local(root, link.local))
        view = RowView.for_table(link.table)
        return [view.from_row(row) for row in rows]

    return strawberry.field(resolver=resolve, description=description, metadata=reads(link))


def personal(
    read: Column | Money | ToMany, data: Data, description: str, mask: Mask | None = None
) -> Any:
    """A field holding personal data of kind ``data`` (lending.privacy): ``read``'s value (a
    column or an amount of the object's row, or its linked rows) as the caller's role may see
    it, in full, masked by ``mask`` or null; its description names who sees what."""

    async def resolve(root: Any, info: Info) -> Any:
        role = info.context.role
        if access(role, data) is Access.HIDDEN:
            return None
        if isinstance(read, ToMany):
            rows = await info.context.loaders.many(read).load(_local(root, read.local))
            view = RowView.for_table(read.table)
            return [view.from_row(row) for row in rows]
        value = (read.value if isinstance(read, Money) else read).read(root.row)
        if isinstance(read, Money) and value is not None:
            value = await in_currency(info, root, value, read)
        return shown(role, data, value, mask)

    return strawberry.field(
        resolver=resolve,
        description=f"{description} {describe(data)}",
        metadata=reads(Personal(read, data, mask)),
    )


async def currency_of(info: Info, row: Any, links: tuple[ToOne, ...]) -> str:
    """The currency of a row's amounts: its own, or that of the row ``links`` lead to."""
    for link in links:
        row = await info.context.loaders.one(link.table, link.remote).load(getattr(row, link.local))
    currency: str = row.currency
    return currency


async def in_currency(info: Info, root: Any, value: Decimal, money: Money) -> Decimal:
    """An amount of ``root``'s row with exactly its currency's minor digits."""
    return as_written(value, await currency_of(info, root.row, money.currency))


def money(read: Column | Total, description: str, currency: tuple[ToOne, ...] = ()) -> Any:
    """A field holding an amount of the type's row, in the currency ``currency`` leads to."""
    declared = Money(read, currency)

    async def resolve(root: Any, info: Info) -> Decimal | None:
        value = read.read(root.row)
        return None if value is None else await in_currency(info, root, value, declared)

    return strawberry.field(resolver=resolve, description=description, metadata=reads(declared))


async def page_of(
    info: Info, declaration: Page, args: PageArgs, parent: Any = None
) -> Connection[Any]:
    """The connection a ``Page`` declaration reads: a root list, or ``parent``'s nested one.

    Nested pages of sibling parents are batched by the request's loaders (one statement per
    distinct set of arguments); ``totalCount`` runs only when selected.
    """
    domain, view = declaration.domain, RowView.for_table(declaration.domain.value)
    checked_filter(info, args)
    if declaration.remote is None:
        args = scoped(info, domain, args)
        db = info.context.db
        rows = await db.run(pages.page, domain, args)
        return connection(
            rows,
            args,
            view.from_row,
            lambda at_most: db.run(pages.count, domain, args.filter, at_most),
        )
    assert declaration.local is not None
    loaders, remote, key = (
        info.context.loaders,
        declaration.remote,
        _local(parent, declaration.local),
    )
    rows = await loaders.pages(domain, remote).load(Nested(key, args))
    return connection(
        rows,
        args,
        view.from_row,
        # A parent's own list is short: counted whole, and capped by Connection.total_count.
        lambda _: loaders.counts(domain, remote).load(Nested(key, args.filter)),
    )


def lookup(guard: Guard, view: type[Node], description: str) -> Any:
    """A root field holding the ``view`` object with a global id (null for any other id)."""
    key = key_for(view.__strawberry_definition__.name)  # type: ignore[attr-defined]

    async def resolve(info: Info, id: GlobalId) -> Any:
        found = key(id)
        return await visible(info, await view.load(info.context.loaders, found) if found else None)

    return guard.field(description, resolver=resolve, metadata=reads(ById(view.TABLE, key)))
