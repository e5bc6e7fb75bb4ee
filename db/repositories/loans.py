"""Loans."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Loan


async def add_loan(session: AsyncSession, loan: Loan) -> Loan:
    """Insert a loan."""
    session.add(loan)
    await session.flush()
    return loan


async def loans_by_ids(session: AsyncSession, ids: Sequence[int]) -> Sequence[Loan]:
    """Loans among ``ids`` (any order)."""
    return (await session.scalars(select(Loan).where(Loan.id.in_(ids)))).all()


async def loans_by_application_ids(
    session: AsyncSession, application_ids: Sequence[int]
) -> Sequence[Loan]:
    """Loans created from the given applications (at most one each)."""
    stmt = select(Loan).where(Loan.application_id.in_(application_ids))
    return (await session.scalars(stmt)).all()
