"""Repositories: every SQL statement of the service lives here. They flush, never commit."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession


async def records(session: AsyncSession, stmt: Select[Any]) -> Sequence[Any]:
    """The rows of an entity ``select`` as read-only records, for reads that change nothing.

    Executed on the session's connection, ``select(Model)`` yields plain rows whose attributes
    are the model's columns (enums and amounts converted as usual), without identity-map or
    change-tracking bookkeeping: loading a thousand instalments takes less than half the time
    it takes as ORM objects. Callers read attributes only; nothing here can be flushed.
    """
    connection = await session.connection()
    found: Sequence[Any] = (await connection.execute(stmt)).all()
    return found
