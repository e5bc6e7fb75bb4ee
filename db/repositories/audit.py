"""The audit trail: appended under a per-chain lock, read by chain, walked for verification."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, inspect, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from db.lean import lean
from db.models import AuditEvent
from db.repositories import events as event_repo
from db.repositories import idempotency
from db.repositories.idempotency import StoredResult
from lending.audit import json_safe


async def lock_chain(session: AsyncSession, chain: str) -> str | None:
    """Lock ``chain`` until the transaction ends and return its last hash (None: no events yet).

    The lock on the chain's head row makes appends to one chain take turns, so each links to
    the last; a chain without a head row (rows loaded in bulk) gets one, under the same lock.
    """
    found: str | None = await (await lean(session)).fetchval(_LOCK_CHAIN, chain)
    return found


_LOCK_CHAIN = """INSERT INTO audit_chain_heads (chain) VALUES ($1)
ON CONFLICT (chain) DO UPDATE SET last_hash = audit_chain_heads.last_hash RETURNING last_hash"""


_COLUMNS = [column for column in AuditEvent.__table__.columns if column.key != "id"]
_JSON = {c.key for c in _COLUMNS if isinstance(c.type, JSONB)}


def _append_statement(*, storing: bool) -> str:
    """Insert the events given as one array per column, then queue the announcements; when
    ``storing``, keep an idempotency key's result in the same statement.

    One text whatever the number of events, so asyncpg prepares it once per connection (a
    VALUES list of one row per event would be a new statement for each count). JSON columns
    travel as text and are cast by PostgreSQL. A WITH clause's write runs whether or not the
    main query reads it.
    """
    names = [c.key for c in _COLUMNS]
    arrays = ", ".join(
        f"${n}::{'timestamptz' if isinstance(c.type, DateTime) else 'text'}[]"
        for n, c in enumerate(_COLUMNS, start=1)
    )
    values = ", ".join(f"e.{name}::jsonb" if name in _JSON else f"e.{name}" for name in names)
    stored = f", stored AS ({idempotency.storing(len(names) + 2)})" if storing else ""
    return (
        f"WITH inserted AS (INSERT INTO {AuditEvent.__tablename__} ({', '.join(names)}) "
        f"SELECT {values} FROM unnest({arrays}) AS e({', '.join(names)})){stored} "
        f"{event_repo.announcing(len(names) + 1)}"
    )


_APPEND = _append_statement(storing=False)
_APPEND_STORING = _append_statement(storing=True)


async def append(
    session: AsyncSession,
    events: Sequence[dict[str, Any]],
    announcements: Sequence[dict[str, Any]] = (),
    stored: StoredResult | None = None,
) -> None:
    """Insert audit events (hashes computed by the caller) and queue their announcements, and
    keep ``stored``, the mutation's result under its idempotency key, if given.

    One statement: the events in chain order, then the notifications. A trigger moves each
    chain's head on, refusing an event that does not link to it.
    """
    columns = [
        [json.dumps(event[c.key]) if c.key in _JSON else event[c.key] for event in events]
        for c in _COLUMNS
    ]
    notified = event_repo.announcements(announcements)
    connection = await lean(session)
    if stored is None:
        await connection.fetchval(_APPEND, *columns, notified)
    else:
        await connection.fetchval(_APPEND_STORING, *columns, notified, *stored.arguments())


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
