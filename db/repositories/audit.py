"""The audit trail: appended under a per-chain lock, read by chain, walked for verification."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditEvent
from db.pagination import PageRequest, keyset_page


async def last_hash(session: AsyncSession, chain: str) -> str | None:
    """Lock ``chain`` until the transaction ends and return its newest hash.

    The advisory lock makes appends to one chain take turns, so each links to the last.
    """
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:chain))"), {"chain": chain})
    stmt = (
        select(AuditEvent.hash)
        .where(AuditEvent.chain == chain)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    return await session.scalar(stmt)


async def append(session: AsyncSession, event: AuditEvent) -> AuditEvent:
    """Insert an audit event (its hash computed by the caller)."""
    session.add(event)
    await session.flush()
    return event


async def page_chain(session: AsyncSession, chain: str, page: PageRequest) -> Sequence[AuditEvent]:
    """One page of a chain's events, oldest first."""
    stmt = keyset_page(
        select(AuditEvent).where(AuditEvent.chain == chain), AuditEvent.id, AuditEvent.id, page
    )
    return (await session.scalars(stmt)).all()


async def count_chain(session: AsyncSession, chain: str) -> int:
    """How many events a chain has."""
    stmt = select(func.count()).where(AuditEvent.chain == chain)
    return int(await session.scalar(stmt) or 0)


async def all_events(session: AsyncSession, batch: int = 5000) -> AsyncIterator[AuditEvent]:
    """Every event in id order, streamed in batches."""
    last_id = 0
    while True:
        stmt = (
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        )
        rows = (await session.scalars(stmt)).all()
        if not rows:
            return
        for row in rows:
            yield row
        last_id = rows[-1].id


def snapshot(row: object) -> dict[str, object]:
    """A row's column values, JSON-ready (amounts as strings), for before/after states."""
    from sqlalchemy import inspect

    from lending.audit import json_safe

    mapper = inspect(type(row))
    return {attr.key: json_safe(getattr(row, attr.key)) for attr in mapper.column_attrs}
