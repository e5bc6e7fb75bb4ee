"""Pages of every list a connection walks: one keyset query shape for all of them.

Each domain (db.reads.plan.Domain) names its model and the statement of the rows its filter
matches; a page, a count, and their per-parent forms (one statement for the pages of many
parents) are built the same way for all, ordered by the page's sort column with ties by id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import (
    Applicant,
    AuditEvent,
    Base,
    Installment,
    Loan,
    LoanApplication,
    Payment,
    Reminder,
)
from db.pagination import keyset_page, keyset_page_per_parent
from db.reads.plan import Domain, PageArgs
from db.repositories import applicants, applications, audit, loans, records, servicing


def _payments(_: None) -> Select[Any]:
    return select(Payment)


def _reminders(_: None) -> Select[Any]:
    return select(Reminder)


def _chain(flt: audit.ChainFilter) -> Select[Any]:
    return select(AuditEvent).where(AuditEvent.chain == flt.chain)


# The model each domain pages through, and the rows its filter selects.
FILTERED: dict[Domain, tuple[type[Base], Callable[[Any], Select[Any]]]] = {
    Domain.APPLICANTS: (Applicant, applicants.filtered),
    Domain.APPLICATIONS: (LoanApplication, applications.filtered),
    Domain.LOANS: (Loan, loans.filtered),
    Domain.PAYMENTS: (Payment, _payments),
    Domain.REMINDERS: (Reminder, _reminders),
    Domain.OVERDUE_INSTALLMENTS: (Installment, servicing.overdue_installments_stmt),
    Domain.AUDIT_EVENTS: (AuditEvent, _chain),
}


def _column(model: type[Base], name: str) -> Any:
    return getattr(model, name)


async def page(session: AsyncSession, domain: Domain, args: PageArgs) -> Sequence[Any]:
    """One page of ``domain`` (up to ``first + 1`` rows: the last only says more follow)."""
    model, filtered = FILTERED[domain]
    stmt = keyset_page(
        filtered(args.filter), _column(model, args.order.column), _column(model, "id"), args.page
    )
    return await records(session, stmt)


async def count(session: AsyncSession, domain: Domain, flt: Any, at_most: int | None = None) -> int:
    """How many rows of ``domain`` match ``flt`` (no more than ``at_most``, when given)."""
    _, filtered = FILTERED[domain]
    stmt = select(func.count()).select_from(filtered(flt).limit(at_most).subquery())
    return int(await session.scalar(stmt) or 0)


async def pages_per_parent(
    session: AsyncSession, domain: Domain, parent: str, parent_ids: Sequence[int], args: PageArgs
) -> Sequence[Any]:
    """One page of ``domain`` for each parent (rows whose ``parent`` column is among the ids)."""
    model, filtered = FILTERED[domain]
    parent_column = _column(model, parent)
    stmt = keyset_page_per_parent(
        filtered(args.filter).where(parent_column.in_(parent_ids)),
        model,
        parent_column,
        _column(model, args.order.column),
        _column(model, "id"),
        args.page,
    )
    return await records(session, stmt)


async def counts_per_parent(
    session: AsyncSession, domain: Domain, parent: str, parent_ids: Sequence[int], flt: Any
) -> dict[int, int]:
    """How many rows of ``domain`` match ``flt`` for each parent."""
    model, filtered = FILTERED[domain]
    sub = filtered(flt).where(_column(model, parent).in_(parent_ids)).subquery()
    rows = await session.execute(select(sub.c[parent], func.count()).group_by(sub.c[parent]))
    return {parent_id: number for parent_id, number in rows.all()}
