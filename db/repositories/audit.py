"""The audit trail: appended under a per-chain lock, read by chain, walked for verification."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, inspect, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditChainHead, AuditEvent
from db.repositories import events as event_repo
from db.repositories import run
from lending.audit import json_safe


async def lock_chain(session: AsyncSession, chain: str) -> str | None:
    """Lock ``chain`` until the transaction ends and return its last hash (None: no events yet).

    The lock on the chain's head row makes appends to one chain take turns, so each links to
    the last; a chain without a head row (rows loaded in bulk) gets one, under the same lock.
    """
    found: str | None = (await run(session, _LOCK_CHAIN, {"p_chain": chain})).scalar_one()
    return found


_LOCK_CHAIN = (
    insert(AuditChainHead)
    .values(chain=bindparam("p_chain"))
    .on_conflict_do_update(
        index_elements=[AuditChainHead.chain], set_={"last_hash": AuditChainHead.last_hash}
    )
    .returning(AuditChainHead.last_hash)
)


_COLUMNS = [column for column in AuditEvent.__table__.columns if column.key != "id"]


def _append_statement() -> Any:
    """Insert the events given as one array per column, then queue the announcements.

    Built once: its shape does not depend on how many events there are, so SQLAlchemy compiles
    it once and asyncpg prepares it once per connection (a multi-row VALUES is compiled anew
    on every call). JSON columns travel as text and are cast by PostgreSQL.
    """
    rows = (
        func.unnest(
            *(
                bindparam(c.key, type_=ARRAY(Text if isinstance(c.type, JSONB) else c.type))
                for c in _COLUMNS
            )
        )
        .table_valued(*(c.key for c in _COLUMNS))
        .render_derived()
    )
    values = [
        cast(rows.c[c.key], JSONB) if isinstance(c.type, JSONB) else rows.c[c.key] for c in _COLUMNS
    ]
    inserted = (
        insert(AuditEvent).from_select([c.key for c in _COLUMNS], select(*values)).cte("inserted")
    )
    return event_repo.announcing().add_cte(inserted)


_APPEND = _append_statement()


async def append(
    session: AsyncSession,
    events: Sequence[dict[str, Any]],
    announcements: Sequence[dict[str, Any]] = (),
) -> None:
    """Insert audit events (hashes computed by the caller) and queue their announcements.

    One statement: the events in chain order, then the notifications. A trigger moves each
    chain's head on, refusing an event that does not link to it.
    """
    columns: dict[str, Any] = {c.key: [] for c in _COLUMNS}
    for event in events:
        for c in _COLUMNS:
            value = event[c.key]
            columns[c.key].append(json.dumps(value) if isinstance(c.type, JSONB) else value)
    parameters = columns | {"announcements": event_repo.announcements(announcements)}
    await run(session, _APPEND, parameters)


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
