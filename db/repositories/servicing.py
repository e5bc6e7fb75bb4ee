"""Schedules, payments and allocations of disbursed loans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    Select,
    Update,
    and_,
    bindparam,
    cast,
    delete,
    false,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.lean import one, one_and, rows
from db.models import Installment, Loan, Money, Payment, PaymentAllocation, Reminder
from db.repositories import index_named, insert_unless_taken, unnest_params, unnest_values
from lending.states import LoanStatus, ReminderStatus

REFERENCE_PER_LOAN = index_named(Payment.__table__, "uq_payments_loan_id_reference")


_LOCK_LOAN = (
    select(Loan)
    .where(Loan.id == bindparam("p_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def lock_loan(session: AsyncSession, loan_id: int) -> Loan | None:
    """The loan, locked until the transaction ends: payments on one loan are serialized."""
    return await one(session, _LOCK_LOAN, {"p_id": loan_id}, Loan)


async def update_loan(
    session: AsyncSession, loan: Loan, *, closed: bool = False, **values: Any
) -> Loan:
    """Change a locked loan and bump its version; ``closed``: it is closed now (its
    ``closed_at`` is the transaction's time)."""
    stmt = _updating(tuple(values), closed)
    updated = await one(session, stmt, _changes(loan, values), Loan)
    assert updated is not None
    return updated


@cache
def _loan_update(columns: tuple[str, ...], closed: bool = False) -> Update:
    """Set ``columns`` of loan ``p_loan`` to parameters ``v_<column>`` (and, ``closed``,
    ``closed_at`` to now), and bump its version; built once per shape."""
    table = Loan.__table__.c
    values: dict[str, Any] = {
        name: bindparam(f"v_{name}", type_=table[name].type) for name in columns
    }
    if closed:
        values["closed_at"] = func.now()
    return (
        update(Loan)
        .where(Loan.id == bindparam("p_loan", type_=BigInteger()))
        .values({**values, "version": Loan.version + 1, "updated_at": func.now()})
        .execution_options(populate_existing=True, synchronize_session=False)
    )


@cache
def _updating(columns: tuple[str, ...], closed: bool) -> Update:
    return _loan_update(columns, closed).returning(Loan)


def _changes(loan: Loan, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters of ``_loan_update``."""
    return {"p_loan": loan.id} | {f"v_{name}": value for name, value in values.items()}


@cache
def _booking(columns: tuple[str, ...]) -> Update:
    """``book_schedule``'s statement, built once per set of loan columns it changes."""
    rows = unnest_params(
        number=Integer(),
        due_date=Date(),
        principal_due=Money,
        interest_due=Money,
        balance_after=Money,
        settled_on=Date(),
    )
    booked = (
        insert(Installment)
        .from_select(
            ["loan_id", *rows.c.keys()],
            select(bindparam("p_loan", type_=BigInteger()), *rows.c),
        )
        .returning(Installment.id, Installment.number)
        .cte("booked")
    )
    ids = select(func.array_agg(aggregate_order_by(booked.c.id, booked.c.number)))
    return _loan_update(columns).add_cte(booked).returning(Loan, ids.scalar_subquery())


async def book_schedule(
    session: AsyncSession, loan: Loan, installments: Sequence[Installment], **values: Any
) -> Loan:
    """Insert a locked loan's instalments and change the loan (as update_loan), in one statement.

    The instalment objects get their ids, as a flush would give them.
    """
    rows = unnest_values(
        installments,
        "number",
        "due_date",
        "principal_due",
        "interest_due",
        "balance_after",
        "settled_on",
    )
    stmt = _booking(tuple(values))
    found = await one_and(session, stmt, rows | _changes(loan, values), Loan, 1)
    assert found is not None
    updated, (booked_ids,) = found
    for installment, key in zip(
        sorted(installments, key=lambda i: i.number), booked_ids, strict=True
    ):
        installment.id = key
    return updated


async def add_payment(session: AsyncSession, payment: Payment) -> Payment | None:
    """Record a payment; None when the loan has a payment with its reference already.

    The partial unique index decides, also between concurrent inserts.
    """
    return await insert_unless_taken(session, payment, REFERENCE_PER_LOAN)


async def lock_payment(session: AsyncSession, payment_id: int) -> Payment | None:
    """A payment, for reversal (its loan must be locked first by the caller)."""
    stmt = (
        select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return await session.scalar(stmt)


async def installment_loan_id(session: AsyncSession, installment_id: int) -> int | None:
    """The loan an instalment belongs to."""
    return await session.scalar(select(Installment.loan_id).where(Installment.id == installment_id))


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


class ScheduledInstallment(NamedTuple):
    """What allocating payments needs of an instalment."""

    id: int
    number: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal


class InstallmentSettled(NamedTuple):
    """The day an instalment was settled (lending.allocation.settled_on), or None."""

    id: int
    settled_on: date | None


class LivePayment(NamedTuple):
    """What allocating payments needs of a non-reversed payment."""

    id: int
    amount: Decimal
    received_on: date
    recorded_at: datetime
    settlement: bool = False


def _allocation_inputs() -> Any:
    loan = bindparam("p_loan", type_=BigInteger())
    installments = select(
        literal(True).label("is_installment"),
        Installment.id,
        Installment.number,
        Installment.due_date.label("on"),
        Installment.principal_due.label("amount"),
        Installment.interest_due,
        null().label("recorded_at"),
        literal(False).label("settlement"),
    ).where(Installment.loan_id == loan)
    payments = select(
        literal(False),
        Payment.id,
        null(),
        Payment.received_on,
        Payment.amount,
        null(),
        Payment.recorded_at,
        Payment.settlement,
    ).where(Payment.loan_id == loan, Payment.reversed_at.is_(None))
    # One round trip for both: a union of the two, told apart by the first column.
    return union_all(installments, payments)


_ALLOCATION_INPUTS = _allocation_inputs()


async def allocation_inputs(
    session: AsyncSession, loan_id: int
) -> tuple[list[ScheduledInstallment], list[LivePayment]]:
    """A loan's instalments in order and its non-reversed payments, in one statement."""
    found = await rows(session, _ALLOCATION_INPUTS, {"p_loan": loan_id})
    return (
        sorted(
            (
                ScheduledInstallment(r["id"], r["number"], r["on"], r["amount"], r["interest_due"])
                for r in found
                if r["is_installment"]
            ),
            key=lambda i: i.number,
        ),
        [
            LivePayment(r["id"], r["amount"], r["on"], r["recorded_at"], r["settlement"])
            for r in found
            if not r["is_installment"]
        ],
    )


async def replace_allocations(
    session: AsyncSession,
    loan: Loan,
    rows: Sequence[PaymentAllocation],
    settled: Sequence[InstallmentSettled],
    **values: Any,
) -> Loan:
    """Swap a locked loan's allocations for fresh ones, keep its instalments' ``settled_on``
    (``settled``: each of its instalments) and its paid totals with them, and change it (as
    update_loan), at once."""
    values |= {
        "principal_paid": sum((r.principal for r in rows), Decimal(0)),
        "interest_paid": sum((r.interest for r in rows), Decimal(0)),
    }
    fresh = unnest_values(
        rows,
        "payment_id",
        "installment_id",
        "received_on",
        "principal",
        "interest",
        "interest_waived",
    )
    days = unnest_values(settled, "id", "settled_on")
    stmt = _reallocating(tuple(values))
    updated = await one(session, stmt, fresh | days | _changes(loan, values), Loan)
    assert updated is not None
    return updated


@cache
def _reallocating(columns: tuple[str, ...]) -> Update:
    """``replace_allocations``' statement, built once per set of loan columns it changes."""
    fresh = unnest_params(
        payment_id=BigInteger(),
        installment_id=BigInteger(),
        received_on=Date(),
        principal=Money,
        interest=Money,
        interest_waived=Money,
    )
    # Parts of one statement see the table as it was before it: the delete keeps the new rows.
    loan = bindparam("p_loan", type_=BigInteger())
    cleared = delete(PaymentAllocation).where(PaymentAllocation.loan_id == loan).cte("cleared")
    allocated = (
        insert(PaymentAllocation)
        .from_select(["loan_id", *fresh.c.keys()], select(loan, *fresh.c))
        .cte("allocated")
    )
    days = unnest_params(id=BigInteger(), settled_on=Date())
    settling = (
        update(Installment)
        .where(
            Installment.id == days.c.id,
            Installment.loan_id == loan,
            Installment.settled_on.is_distinct_from(days.c.settled_on),
        )
        .values(settled_on=days.c.settled_on)
        .cte("settled")
    )
    return (
        _loan_update(columns).add_cte(cleared).add_cte(allocated).add_cte(settling).returning(Loan)
    )


def _paid_by(as_of: date) -> Any:
    """Per instalment: what was paid (or waived) on or before ``as_of``."""
    settled = PaymentAllocation.principal + PaymentAllocation.interest
    return (
        select(
            PaymentAllocation.installment_id,
            func.sum(settled + PaymentAllocation.interest_waived).label("paid"),
        )
        .where(PaymentAllocation.received_on <= as_of)
        .group_by(PaymentAllocation.installment_id)
        .subquery("paid")
    )


@dataclass(frozen=True)
class OverdueFilter:
    """Instalments of active loans unpaid on ``as_of`` that fell due on ``latest_due`` or before.

    ``latest_due`` is None when no date is early enough (before the calendar's first day).
    """

    as_of: date
    latest_due: date | None
    # Only instalments with no reminder requested on or after this day (failed ones aside).
    not_reminded_since: date | None = None

    @classmethod
    def of(
        cls, as_of: date, min_days_past_due: int, not_reminded_since: date | None = None
    ) -> OverdueFilter:
        """Instalments at least ``min_days_past_due`` days (and at least one day) late."""
        latest = as_of.toordinal() - max(min_days_past_due, 1)
        return cls(as_of, date.fromordinal(latest) if latest >= 1 else None, not_reminded_since)


def overdue_installments_stmt(flt: OverdueFilter) -> Select[Installment]:
    """Instalments of active loans still unpaid some days after falling due."""
    stmt = (
        select(Installment)
        .join(Loan, Loan.id == Installment.loan_id)
        .where(
            Loan.status == LoanStatus.ACTIVE,
            Installment.due_date <= flt.latest_due if flt.latest_due is not None else false(),
            or_(Installment.settled_on.is_(None), Installment.settled_on > flt.as_of),
        )
    )
    if flt.not_reminded_since is not None:
        reminded = select(Reminder.id).where(
            Reminder.installment_id == Installment.id,
            Reminder.requested_on >= flt.not_reminded_since,
            Reminder.status != ReminderStatus.FAILED,
        )
        stmt = stmt.where(~reminded.exists())
    return stmt


def days_past_due_stmt(as_of: date) -> Any:
    """Per active loan with something overdue on ``as_of``: days past due of its oldest."""
    paid = _paid_by(as_of)
    return (
        select(
            Installment.loan_id,
            # As text: asyncpg sends 9999-12-31 as 'infinity', from which no day can be counted.
            (cast(literal(as_of.isoformat()), Date) - func.min(Installment.due_date)).label(
                "days_past_due"
            ),
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
    return or_(false(), *clauses)  # no bucket at all: no loan matches
