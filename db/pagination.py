"""Keyset pagination: pages that stay stable under inserts and fast at any depth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, aliased


@dataclass(frozen=True)
class PageRequest:
    """``first`` rows after the row whose (sort value, id) is ``after``, in the given direction."""

    first: int
    after: tuple[Any, int] | None = None
    descending: bool = False


def _after_clause(
    sort: InstrumentedAttribute[Any], ident: InstrumentedAttribute[Any], page: PageRequest
) -> Any:
    assert page.after is not None
    value, last_id = page.after
    if page.descending:
        return or_(sort < value, and_(sort == value, ident < last_id))
    return or_(sort > value, and_(sort == value, ident > last_id))


def _order(
    sort: InstrumentedAttribute[Any], ident: InstrumentedAttribute[Any], page: PageRequest
) -> tuple[Any, Any]:
    if page.descending:
        return sort.desc(), ident.desc()
    return sort.asc(), ident.asc()


def keyset_page(
    stmt: Select[Any],
    sort: InstrumentedAttribute[Any],
    ident: InstrumentedAttribute[Any],
    page: PageRequest,
) -> Select[Any]:
    """``stmt`` limited to one page; one extra row is fetched to tell whether more follow."""
    if page.after is not None:
        stmt = stmt.where(_after_clause(sort, ident, page))
    return stmt.order_by(*_order(sort, ident, page)).limit(page.first + 1)


def keyset_page_per_parent(
    stmt: Select[Any],
    entity: type[Any],
    parent: InstrumentedAttribute[Any],
    sort: InstrumentedAttribute[Any],
    ident: InstrumentedAttribute[Any],
    page: PageRequest,
) -> Select[Any]:
    """One page for each parent in a single statement (a window over ``parent``)."""
    if page.after is not None:
        stmt = stmt.where(_after_clause(sort, ident, page))
    rank = (
        func.row_number()
        .over(partition_by=parent, order_by=_order(sort, ident, page))
        .label("rank")
    )
    ranked = stmt.add_columns(rank).subquery()
    row = aliased(entity, ranked)
    return (
        select(row)
        .where(ranked.c.rank <= page.first + 1)
        .order_by(ranked.c[parent.key], ranked.c.rank)
    )
