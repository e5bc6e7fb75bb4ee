"""Idempotency keys: claimed in the mutation's transaction, replayed afterwards."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.lean import lean
from db.models import IdempotencyKey

_CLAIM = """INSERT INTO idempotency_keys (actor, key, operation, request_hash)
VALUES ($1, $2, $3, $4) ON CONFLICT (actor, key) DO NOTHING RETURNING key"""


@dataclass(frozen=True)
class StoredResult:
    """What the first execution under ``(actor, key)`` produced, to keep with its writes."""

    actor: str
    key: str
    result: dict[str, Any]

    def arguments(self) -> tuple[str, str, str]:
        """The parameters of ``storing``, in order."""
        return self.actor, self.key, json.dumps(self.result)


def storing(first: int) -> str:
    """The update keeping a result, its parameters (``StoredResult.arguments``) numbered from
    ``first``: a statement of its own, or a WITH clause of the write it goes with."""
    actor, key, result = (f"${n}" for n in range(first, first + 3))
    return (
        f"UPDATE idempotency_keys SET result = {result}::text::jsonb "
        f"WHERE actor = {actor} AND key = {key}"
    )


_STORE = storing(1)


async def claim(
    session: AsyncSession, *, actor: str, key: str, operation: str, request_hash: str
) -> IdempotencyKey | None:
    """Claim (actor, key) for this transaction; None when claimed, else the existing row.

    A concurrent claim of the same key waits on the unique index until the first transaction
    ends: then it sees the committed row (and replays it) or, after a rollback, claims it.
    """
    connection = await lean(session)
    if await connection.fetchval(_CLAIM, actor, key, operation, request_hash) is not None:
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


async def store_result(session: AsyncSession, stored: StoredResult) -> None:
    """Keep what the first execution produced, in the same transaction as its writes."""
    await (await lean(session)).fetchval(_STORE, *stored.arguments())


async def purge(session: AsyncSession, older_than: timedelta) -> int:
    """Delete keys older than ``older_than``; return how many."""
    result = await session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.created_at < func.now() - older_than)
        .returning(IdempotencyKey.key)
    )
    return len(result.all())
