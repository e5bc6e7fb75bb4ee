"""Idempotency keys: claimed in the mutation's transaction, replayed afterwards."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import IdempotencyKey
from db.repositories import run

_KEYS = IdempotencyKey.__table__.c
_CLAIM = (
    insert(IdempotencyKey)
    .values(
        actor=bindparam("p_actor"),
        key=bindparam("p_key"),
        operation=bindparam("p_operation"),
        request_hash=bindparam("p_request_hash"),
    )
    .on_conflict_do_nothing(index_elements=[IdempotencyKey.actor, IdempotencyKey.key])
    .returning(IdempotencyKey.key)
)
_STORE = (
    update(IdempotencyKey)
    .where(IdempotencyKey.actor == bindparam("p_actor"), IdempotencyKey.key == bindparam("p_key"))
    .values(result=bindparam("p_result", type_=_KEYS.result.type))
)


async def claim(
    session: AsyncSession, *, actor: str, key: str, operation: str, request_hash: str
) -> IdempotencyKey | None:
    """Claim (actor, key) for this transaction; None when claimed, else the existing row.

    A concurrent claim of the same key waits on the unique index until the first transaction
    ends: then it sees the committed row (and replays it) or, after a rollback, claims it.
    """
    claimed = await run(
        session,
        _CLAIM,
        {"p_actor": actor, "p_key": key, "p_operation": operation, "p_request_hash": request_hash},
    )
    if claimed.first() is not None:
        return None
    existing = await session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.actor == actor, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    )
    assert existing is not None
    return existing


async def find(session: AsyncSession, *, actor: str, key: str) -> IdempotencyKey | None:
    """The completed record of (actor, key), if any, without claiming it."""
    return await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.actor == actor, IdempotencyKey.key == key)
    )


async def store_result(
    session: AsyncSession, *, actor: str, key: str, result: dict[str, Any]
) -> None:
    """Keep what the first execution produced, in the same transaction as its writes."""
    await run(session, _STORE, {"p_actor": actor, "p_key": key, "p_result": result})


async def purge(session: AsyncSession, older_than: timedelta) -> int:
    """Delete keys older than ``older_than``; return how many."""
    result = await session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.created_at < func.now() - older_than)
        .returning(IdempotencyKey.key)
    )
    return len(result.all())
