"""API keys: create, revoke, list, authenticate, and the demo's ready-made keys."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ApiKey
from db.repositories import api_keys as repo
from lending.access import (
    STAFF_ROLES,
    Budget,
    Principal,
    Role,
    bearer_credential,
    demo_key,
    demo_key_name,
    hash_api_key,
    new_api_key,
)
from lending.errors import DomainError, ErrorCode
from lending.validation import clean_text


async def create_key(
    session: AsyncSession, *, name: str, role: Role, budget: Budget | None = None
) -> tuple[ApiKey, str]:
    """A new key for ``name`` (charged against ``budget``, or its role's budget when None);
    returns the row and the key itself (shown only this once)."""
    clean = clean_text(name, "name", max_length=100, required=True, label="Name")
    assert clean is not None
    if role not in STAFF_ROLES:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, "Borrowers sign in with tokens, not API keys.", "role"
        )
    key = new_api_key()
    try:
        async with session.begin_nested():
            row = await repo.add_key(
                session, name=clean, role=role, key_hash=hash_api_key(key), budget=budget
            )
    except IntegrityError:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, f"A key named {clean!r} exists already.", "name"
        ) from None
    return row, key


async def revoke_key(session: AsyncSession, name: str) -> None:
    """Revoke the named key; NOT_FOUND when there is no such active key."""
    if not await repo.revoke_key(session, name):
        raise DomainError(ErrorCode.NOT_FOUND, f"No active key named {name!r}.", "name")


async def list_keys(session: AsyncSession) -> Sequence[ApiKey]:
    """Every key (hashes only), newest first."""
    return await repo.list_keys(session)


async def authenticate(session: AsyncSession, authorization: str | None) -> Principal | None:
    """The caller behind an ``Authorization: Bearer <key>`` header, if the key is active."""
    key = bearer_credential(authorization)
    if key is None or len(key) > 200:
        return None
    row = await repo.active_key(session, hash_api_key(key))
    if row is None:
        return None
    budget = None
    if row.budget_capacity is not None and row.budget_restore is not None:
        budget = Budget(row.budget_capacity, row.budget_restore)
    return Principal(name=row.name, role=row.role, budget=budget)


async def ensure_demo_keys(session: AsyncSession) -> dict[Role, str]:
    """The demo's fixed key per role, stored if absent; returns them to print."""
    for role in STAFF_ROLES:
        await repo.ensure_key(
            session,
            name=demo_key_name(role),
            role=role,
            key_hash=hash_api_key(demo_key(role)),
            demo=True,
        )
    return {role: demo_key(role) for role in STAFF_ROLES}


async def demo_keys_present(session: AsyncSession) -> bool:
    """Whether any active demo key exists (production refuses to start then)."""
    return await repo.demo_keys_present(session)
