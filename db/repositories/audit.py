"""The audit trail: appended under a per-chain lock, read by chain, walked for verification."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditChainHead, AuditEvent
from db.repositories import events as event_repo
from lending.audit import json_safe


async def lock_chain(session: AsyncSession, chain: str) -> str | None:
    """Lock ``chain`` until the transaction ends and return its last hash (None: no events yet).

    The lock on the chain's head row makes appends to one chain take turns, so each links to
    the last; a chain without a head row (rows loaded in bulk) gets one, under the same lock.
    """
    stmt = (
        insert(AuditChainHead)
        .values(chain=chain)
        .on_conflict_do_update(
            index_elements=[AuditChainHead.chain],
            set_={"last_hash": AuditChainHead.last_hash},
        )
        .returning(AuditChainHead.last_hash)
    )
    return (await session.execute(stmt)).scalar_one()


async def append(
    session: AsyncSession,
    events: Sequence[dict[str, Any]],
    announcements: Sequence[dict[str, Any]] = (),
) -> None:
    """Insert audit events (hashes computed by the caller) and queue their announcements.

    One statement: the events in chain order, then the notifications. A trigger moves each
    chain's head on, refusing an event that does not link to it.
    """
    inserted = insert(AuditEvent).values(list(events)).cte("inserted")
    await session.execute(event_repo.announce(announcements).add_cte(inserted))


@dataclass(frozen=True)
class ChainFilter:
    """The events of one chain: given by name, or as the chain of a loan's application."""

    chain: str | None = None
    loan_key: int | None = None


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
    mapper = inspect(type(row))
    return {attr.key: json_safe(getattr(row, attr.key)) for attr in mapper.column_attrs}
