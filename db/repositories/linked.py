"""Rows linked to others by a column, for the per-field path's batched loaders.

A relation is declared once beside its GraphQL field (db.reads.plan ``ToOne``/``ToMany``: the
table, the linking column, the order); the compiled path renders it as a join, the per-field
path loads it for many parents at once with the one statement below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Base
from db.repositories import records

MODELS: dict[str, type[Base]] = {
    mapper.class_.__tablename__: mapper.class_ for mapper in Base.registry.mappers
}


async def rows_linked(
    session: AsyncSession,
    table: str,
    column: str,
    keys: Sequence[Any],
    order: Sequence[tuple[str, bool]] = (),
) -> Sequence[Any]:
    """The rows of ``table`` whose ``column`` is among ``keys``, grouped by it, in ``order``."""
    model = MODELS[table]
    linked_by = getattr(model, column)
    stmt = select(model).where(linked_by.in_(keys))
    if order:
        columns = [getattr(model, name) for name, _ in order]
        ordered = [
            c.desc() if descending else c for c, (_, descending) in zip(columns, order, strict=True)
        ]
        stmt = stmt.order_by(linked_by, *ordered)
    return await records(session, stmt)
