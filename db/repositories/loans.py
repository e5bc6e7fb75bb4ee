"""Loans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Loan
from db.pagination import PageRequest, keyset_page, keyset_page_per_parent
from db.repositories import records
from db.repositories.servicing import bucket_condition, days_past_due_stmt
from lending.states import LoanStatus


@dataclass(frozen=True)
class LoanFilter:
    """Conditions on loans; None means no condition.

    ``days_past_due`` holds (low, high) bands, high None meaning unbounded; (0, 0) is current.
    """

    statuses: tuple[LoanStatus, ...] | None = None
    days_past_due: tuple[tuple[int, int | None], ...] | None = None
    as_of: date | None = None


async def loans_by_ids(session: AsyncSession, ids: Sequence[int]) -> Sequence[Loan]:
    """Loans among ``ids`` (any order)."""
    return await records(session, select(Loan).where(Loan.id.in_(ids)))


async def loans_by_application_ids(
    session: AsyncSession, application_ids: Sequence[int]
) -> Sequence[Loan]:
    """Loans created from the given applications (at most one each)."""
    stmt = select(Loan).where(Loan.application_id.in_(application_ids))
    return await records(session, stmt)


def _filtered(flt: LoanFilter) -> Select[Loan]:
    stmt = select(Loan)
    if flt.statuses is not None:
        stmt = stmt.where(Loan.status.in_(flt.statuses))
    if flt.days_past_due is not None:
        assert flt.as_of is not None
        dpd = days_past_due_stmt(flt.as_of)
        stmt = (
            stmt.outerjoin(dpd, dpd.c.loan_id == Loan.id)
            .where(Loan.status == LoanStatus.ACTIVE)
            .where(bucket_condition(dpd, flt.days_past_due))
        )
    return stmt


async def page_loans(session: AsyncSession, flt: LoanFilter, page: PageRequest) -> Sequence[Loan]:
    """One page of loans by approval time (up to ``first + 1`` rows)."""
    stmt = keyset_page(_filtered(flt), Loan.approved_at, Loan.id, page)
    return await records(session, stmt)


async def count_loans(session: AsyncSession, flt: LoanFilter) -> int:
    """How many loans match ``flt``."""
    stmt = select(func.count()).select_from(_filtered(flt).subquery())
    return int(await session.scalar(stmt) or 0)


async def page_loans_per_applicant(
    session: AsyncSession, applicant_ids: Sequence[int], flt: LoanFilter, page: PageRequest
) -> Sequence[Loan]:
    """One page of loans for each applicant, in one statement."""
    stmt = keyset_page_per_parent(
        _filtered(flt).where(Loan.applicant_id.in_(applicant_ids)),
        Loan,
        Loan.applicant_id,
        Loan.approved_at,
        Loan.id,
        page,
    )
    return await records(session, stmt)


async def count_loans_per_applicant(
    session: AsyncSession, applicant_ids: Sequence[int], flt: LoanFilter
) -> dict[int, int]:
    """How many loans match ``flt`` for each applicant."""
    sub = _filtered(flt).where(Loan.applicant_id.in_(applicant_ids)).subquery()
    rows = await session.execute(
        select(sub.c.applicant_id, func.count()).group_by(sub.c.applicant_id)
    )
    return {applicant_id: count for applicant_id, count in rows.all()}
