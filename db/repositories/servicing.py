"""Schedules, payments and allocations of disbursed loans."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, delete, false, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Installment, Loan, Payment, PaymentAllocation
from db.pagination import PageRequest, keyset_page, keyset_page_per_parent
from db.repositories import records
from lending.states import LoanStatus


async def lock_loan(session: AsyncSession, loan_id: int) -> Loan | None:
    """The loan, locked until the transaction ends: payments on one loan are serialized."""
    stmt = (
        select(Loan)
        .where(Loan.id == loan_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return await session.scalar(stmt)


async def update_loan(session: AsyncSession, loan: Loan, **values: Any) -> Loan:
    """Change a locked loan and bump its version."""
    stmt = (
        update(Loan)
        .where(Loan.id == loan.id)
        .values(**values, version=Loan.version + 1, updated_at=func.now())
        .returning(Loan)
        .execution_options(populate_existing=True)
    )
    updated = await session.scalar(stmt)
    assert updated is not None
    return updated


async def add_installments(session: AsyncSession, rows: Sequence[Installment]) -> None:
    """Book a schedule."""
    session.add_all(rows)
    await session.flush()


async def installments_by_loan_ids(
    session: AsyncSession, loan_ids: Sequence[int]
) -> Sequence[Installment]:
    """Instalments of the given loans, in order."""
    stmt = (
        select(Installment)
        .where(Installment.loan_id.in_(loan_ids))
        .order_by(Installment.loan_id, Installment.number)
    )
    return await records(session, stmt)


async def installments_by_ids(session: AsyncSession, ids: Sequence[int]) -> Sequence[Installment]:
    """Instalments among ``ids`` (any order)."""
    return await records(session, select(Installment).where(Installment.id.in_(ids)))


async def add_payment(session: AsyncSession, payment: Payment) -> Payment:
    """Record a payment."""
    session.add(payment)
    await session.flush()
    return payment


async def lock_payment(session: AsyncSession, payment_id: int) -> Payment | None:
    """A payment, for reversal (its loan must be locked first by the caller)."""
    stmt = (
        select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return await session.scalar(stmt)


async def payment_loan_id(session: AsyncSession, payment_id: int) -> int | None:
    """The loan a payment belongs to."""
    return await session.scalar(select(Payment.loan_id).where(Payment.id == payment_id))


async def mark_reversed(
    session: AsyncSession, payment: Payment, *, by: str, reason: str | None
) -> Payment:
    """Mark a payment reversed; the row stays."""
    stmt = (
        update(Payment)
        .where(Payment.id == payment.id, Payment.reversed_at.is_(None))
        .values(reversed_at=func.now(), reversed_by=by, reversed_reason=reason)
        .returning(Payment)
        .execution_options(populate_existing=True)
    )
    updated = await session.scalar(stmt)
    assert updated is not None
    return updated


async def live_payments(session: AsyncSession, loan_id: int) -> Sequence[Payment]:
    """Non-reversed payments of a loan in allocation order."""
    stmt = (
        select(Payment)
        .where(Payment.loan_id == loan_id, Payment.reversed_at.is_(None))
        .order_by(Payment.received_on, Payment.recorded_at, Payment.id)
    )
    return (await session.scalars(stmt)).all()


async def replace_allocations(
    session: AsyncSession, loan_id: int, rows: Sequence[PaymentAllocation]
) -> None:
    """Swap a loan's derived allocations for freshly computed ones."""
    await session.execute(delete(PaymentAllocation).where(PaymentAllocation.loan_id == loan_id))
    session.add_all(rows)
    await session.flush()


async def allocations_by_loan_ids(
    session: AsyncSession, loan_ids: Sequence[int]
) -> Sequence[PaymentAllocation]:
    """Allocations of the given loans, in application order."""
    stmt = (
        select(PaymentAllocation)
        .where(PaymentAllocation.loan_id.in_(loan_ids))
        .order_by(PaymentAllocation.loan_id, PaymentAllocation.id)
    )
    return await records(session, stmt)


async def allocations_by_payment_ids(
    session: AsyncSession, payment_ids: Sequence[int]
) -> Sequence[PaymentAllocation]:
    """Allocations of the given payments, in application order."""
    stmt = (
        select(PaymentAllocation)
        .where(PaymentAllocation.payment_id.in_(payment_ids))
        .order_by(PaymentAllocation.payment_id, PaymentAllocation.id)
    )
    return await records(session, stmt)


async def payments_by_ids(session: AsyncSession, ids: Sequence[int]) -> Sequence[Payment]:
    """Payments among ``ids`` (any order)."""
    return await records(session, select(Payment).where(Payment.id.in_(ids)))


async def page_payments_per_loan(
    session: AsyncSession, loan_ids: Sequence[int], page: PageRequest
) -> Sequence[Payment]:
    """One page of payments per loan, most recently received first, in one statement."""
    stmt = keyset_page_per_parent(
        select(Payment).where(Payment.loan_id.in_(loan_ids)),
        Payment,
        Payment.loan_id,
        Payment.received_on,
        Payment.id,
        page,
    )
    return await records(session, stmt)


async def count_payments_per_loan(session: AsyncSession, loan_ids: Sequence[int]) -> dict[int, int]:
    """How many payments (reversed included) each loan has."""
    rows = await session.execute(
        select(Payment.loan_id, func.count())
        .where(Payment.loan_id.in_(loan_ids))
        .group_by(Payment.loan_id)
    )
    return {loan_id: count for loan_id, count in rows.all()}


def _paid_by(as_of: date) -> Any:
    """Per instalment: what was paid on or before ``as_of``."""
    return (
        select(
            PaymentAllocation.installment_id,
            func.sum(PaymentAllocation.principal + PaymentAllocation.interest).label("paid"),
        )
        .where(PaymentAllocation.received_on <= as_of)
        .group_by(PaymentAllocation.installment_id)
        .subquery("paid")
    )


def overdue_installments_stmt(as_of: date, min_days_past_due: int) -> Select[Installment]:
    """Instalments of active loans unpaid ``min_days_past_due`` days or more after falling due."""
    paid = _paid_by(as_of)
    latest_due = as_of.toordinal() - max(min_days_past_due, 1)
    return (
        select(Installment)
        .join(Loan, Loan.id == Installment.loan_id)
        .outerjoin(paid, paid.c.installment_id == Installment.id)
        .where(
            Loan.status == LoanStatus.ACTIVE,
            # Before the calendar's first day nothing can have fallen due.
            Installment.due_date <= date.fromordinal(latest_due) if latest_due >= 1 else false(),
            Installment.principal_due + Installment.interest_due
            > func.coalesce(paid.c.paid, literal(0)),
        )
    )


async def page_overdue_installments(
    session: AsyncSession, as_of: date, min_days_past_due: int, page: PageRequest
) -> Sequence[Installment]:
    """Overdue instalments, most overdue (oldest due date) first."""
    stmt = keyset_page(
        overdue_installments_stmt(as_of, min_days_past_due),
        Installment.due_date,
        Installment.id,
        page,
    )
    return (await session.scalars(stmt)).all()


async def count_overdue_installments(
    session: AsyncSession, as_of: date, min_days_past_due: int
) -> int:
    """How many instalments are overdue by at least ``min_days_past_due`` days."""
    sub = overdue_installments_stmt(as_of, min_days_past_due).subquery()
    return int(await session.scalar(select(func.count()).select_from(sub)) or 0)


def days_past_due_stmt(as_of: date) -> Any:
    """Per active loan with something overdue on ``as_of``: days past due of its oldest."""
    paid = _paid_by(as_of)
    return (
        select(
            Installment.loan_id,
            (literal(as_of) - func.min(Installment.due_date)).label("days_past_due"),
        )
        .outerjoin(paid, paid.c.installment_id == Installment.id)
        .where(
            Installment.due_date < as_of,
            Installment.principal_due + Installment.interest_due
            > func.coalesce(paid.c.paid, literal(0)),
        )
        .group_by(Installment.loan_id)
        .subquery("dpd")
    )


def bucket_condition(dpd: Any, bounds: Sequence[tuple[int, int | None]]) -> Any:
    """Loans whose days past due fall in any of ``bounds`` ((0, 0) means current)."""
    days = func.coalesce(dpd.c.days_past_due, literal(0))
    clauses = []
    for low, high in bounds:
        clauses.append(days >= low if high is None else and_(days >= low, days <= high))
    return or_(*clauses)
