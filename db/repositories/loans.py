"""Loans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, select

from db.models import Loan
from db.repositories.applicants import owned_by
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
    owner: str | None = None  # a borrower's email (lower case): their own loans only


def filtered(flt: LoanFilter) -> Select[Loan]:
    """Loans matching ``flt``."""
    stmt = select(Loan)
    if flt.owner is not None:
        stmt = stmt.where(Loan.applicant_id == owned_by(flt.owner))
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
