"""Keyset pagination: pages that stay stable under inserts and fast at any depth.

A page is a window of the list (after one cursor, before another) read from one end: forward
(``first``) takes the ``size`` rows at its start, backward (``last``) the ``size`` rows at its
end. A backward page is read in the reversed order, so that ``LIMIT size + 1`` keeps the rows
nearest its end and the extra row says more precede; the caller puts the rows back in the
list's order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, aliased


@dataclass(frozen=True)
class PageRequest:
    """``size`` rows between the (sort value, id) keys ``after`` and ``before``.

    ``descending``: the list's order; ``backward``: the page is the window's last ``size`` rows
    (``last``) rather than its first (``first``).
    """

    size: int
    after: tuple[Any, int] | None = None
    before: tuple[Any, int] | None = None
    descending: bool = False
    backward: bool = False

    @property
    def reads_descending(self) -> bool:
        """The direction the rows are read in: the list's, reversed for a backward page."""
        return self.descending != self.backward


def _beyond(
    sort: InstrumentedAttribute[Any],
    ident: InstrumentedAttribute[Any],
    key: tuple[Any, int],
    later: bool,
) -> Any:
    """Rows that sort after ``key`` (``later``) or before it, ties broken by id."""
    value, key_id = key
    if later:
        return or_(sort > value, and_(sort == value, ident > key_id))
    return or_(sort < value, and_(sort == value, ident < key_id))


def _window(
    stmt: Select[Any],
    sort: InstrumentedAttribute[Any],
    ident: InstrumentedAttribute[Any],
    page: PageRequest,
) -> Select[Any]:
    """``stmt`` limited to the rows between the page's cursors."""
    if page.after is not None:
        stmt = stmt.where(_beyond(sort, ident, page.after, later=not page.descending))
    if page.before is not None:
        stmt = stmt.where(_beyond(sort, ident, page.before, later=page.descending))
    return stmt


def _order(
    sort: InstrumentedAttribute[Any], ident: InstrumentedAttribute[Any], page: PageRequest
) -> tuple[Any, Any]:
    if page.reads_descending:
        return sort.desc(), ident.desc()
    return sort.asc(), ident.asc()


def keyset_page(
    stmt: Select[Any],
    sort: InstrumentedAttribute[Any],
    ident: InstrumentedAttribute[Any],
    page: PageRequest,
) -> Select[Any]:
    """``stmt`` limited to one page in reading order; one extra row tells whether more remain."""
    stmt = _window(stmt, sort, ident, page)
    return stmt.order_by(*_order(sort, ident, page)).limit(page.size + 1)


def keyset_page_per_parent(
    stmt: Select[Any],
    entity: type[Any],
    parent: InstrumentedAttribute[Any],
    sort: InstrumentedAttribute[Any],
    ident: InstrumentedAttribute[Any],
    page: PageRequest,
) -> Select[Any]:
    """One page for each parent in a single statement (a window over ``parent``).

    Each parent's rows come in reading order, like ``keyset_page``'s.
    """
    stmt = _window(stmt, sort, ident, page)
    rank = (
        func.row_number()
        .over(partition_by=parent, order_by=_order(sort, ident, page))
        .label("rank")
    )
    ranked = stmt.add_columns(rank).subquery()
    row = aliased(entity, ranked)
    return (
        select(row)
        .where(ranked.c.rank <= page.size + 1)
        .order_by(ranked.c[parent.key], ranked.c.rank)
    )
