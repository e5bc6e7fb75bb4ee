"""The one place where a mutation's transaction is committed or rolled back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from graph.context import Info
from graph.errors import UserError, user_errors
from lending.errors import DomainError, DomainErrors

T = TypeVar("T")


async def in_transaction(
    info: Info, work: Callable[[AsyncSession], Awaitable[T]]
) -> T | list[UserError]:
    """Run ``work`` in its own transaction: commit on success, roll back on a domain error.

    Expected failures come back as userErrors, having written nothing; anything else propagates
    (after the rollback) and is masked for the client.
    """
    try:
        async with info.context.sessionmaker() as session, session.begin():
            return await work(session)
    except (DomainError, DomainErrors) as exc:
        return user_errors(exc)
