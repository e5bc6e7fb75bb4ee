"""API keys."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiKey
from lending.access import Budget, Role


async def add_key(
    session: AsyncSession,
    *,
    name: str,
    role: Role,
    key_hash: str,
    demo: bool = False,
    budget: Budget | None = None,
) -> ApiKey:
    """Store a new key (with its own budget, or its role's when ``budget`` is None)."""
    key = ApiKey(name=name, role=role, key_hash=key_hash, demo=demo)
    if budget is not None:
        key.budget_capacity, key.budget_restore = budget.capacity, budget.restore
    session.add(key)
    await session.flush()
    return key


async def ensure_key(
    session: AsyncSession, *, name: str, role: Role, key_hash: str, demo: bool
) -> None:
    """Store a key unless one with that name exists."""
    await session.execute(
        insert(ApiKey)
        .values(name=name, role=role, key_hash=key_hash, demo=demo)
        .on_conflict_do_nothing(index_elements=[ApiKey.name])
    )


async def active_key(session: AsyncSession, key_hash: str) -> ApiKey | None:
    """The unrevoked key with this hash, if any."""
    stmt = select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    return await session.scalar(stmt)


async def revoke_key(session: AsyncSession, name: str) -> bool:
    """Revoke the named key; False when there is no such unrevoked key."""
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(ApiKey.id)
    )
    return result.first() is not None


async def list_keys(session: AsyncSession) -> Sequence[ApiKey]:
    """Every key, newest first."""
    return (await session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc()))).all()


async def demo_keys_present(session: AsyncSession) -> bool:
    """Whether any unrevoked demo key exists."""
    stmt = select(func.count()).where(ApiKey.demo.is_(True), ApiKey.revoked_at.is_(None))
    return bool(await session.scalar(stmt))
