"""Horizontal allocation of payments to instalments: oldest first, interest before principal."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

_ZERO = Decimal(0)


@dataclass(frozen=True)
class InstallmentDue:
    """What one instalment asks for."""

    number: int
    due_date: date
    principal: Decimal
    interest: Decimal


@dataclass(frozen=True)
class PaymentIn:
    """A non-reversed payment; ``key`` is an opaque payment identifier.

    A settling payment (an early settlement) is applied by ``settle`` instead: everything left,
    less the interest it waives.
    """

    key: object
    amount: Decimal
    received_on: date
    recorded_at: datetime
    settles: bool = False


@dataclass(frozen=True)
class Allocation:
    """The part of one payment applied to one instalment."""

    payment_key: object
    installment_number: int
    principal: Decimal
    interest: Decimal
    interest_waived: Decimal = _ZERO

    @property
    def amount(self) -> Decimal:
        """Principal plus interest applied (waived interest is no payment)."""
        return self.principal + self.interest


@dataclass(frozen=True)
class InstallmentBalance:
    """An instalment with what has been paid against it."""

    number: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    paid_on: date | None
    interest_waived: Decimal = _ZERO

    @property
    def total_due(self) -> Decimal:
        """Principal plus interest the instalment asks for."""
        return self.principal_due + self.interest_due

    @property
    def paid(self) -> Decimal:
        """Principal plus interest paid against the instalment."""
        return self.principal_paid + self.interest_paid

    @property
    def outstanding(self) -> Decimal:
        """What is still to be paid on the instalment (waived interest is owed no more)."""
        return self.total_due - self.paid - self.interest_waived

    @property
    def settled_on(self) -> date | None:
        """The day from which nothing is owed on it (see ``settled_on``)."""
        return settled_on(self.due_date, self.total_due, self.outstanding, self.paid_on)


def settled_on(
    due_date: date, total_due: Decimal, outstanding: Decimal, paid_on: date | None
) -> date | None:
    """The first day on which the payments received by then covered an instalment: the day of
    the payment that completed it, None while something is owed, and its due date when it asked
    for nothing. Payments apply in the order they were received, so an instalment is unpaid on a
    day D exactly when this is None or after D (what an overdue list is read by).
    """
    if total_due == 0:
        return due_date
    return paid_on if outstanding == 0 else None


@dataclass(frozen=True)
class AllocationResult:
    """Allocations in application order, balances per instalment and any amount left over."""

    allocations: tuple[Allocation, ...]
    balances: tuple[InstallmentBalance, ...]
    unallocated: Decimal


@dataclass
class _Running:
    """Mutable per-instalment state while payments are applied."""

    due: InstallmentDue
    principal_paid: Decimal = _ZERO
    interest_paid: Decimal = _ZERO
    paid_on: date | None = None
    interest_waived: Decimal = _ZERO

    def freeze(self) -> InstallmentBalance:
        return InstallmentBalance(
            number=self.due.number,
            due_date=self.due.due_date,
            principal_due=self.due.principal,
            interest_due=self.due.interest,
            principal_paid=self.principal_paid,
            interest_paid=self.interest_paid,
            paid_on=self.paid_on,
            interest_waived=self.interest_waived,
        )


def payment_order(payment: PaymentIn) -> tuple[date, datetime, tuple[int, int, str]]:
    """Sort key that makes replay independent of the order payments are listed in.

    Ties fall to the key: numbers (database ids, in the order they were given) as numbers,
    anything else as text after them.
    """
    key = payment.key
    if isinstance(key, int) and not isinstance(key, bool):
        return (payment.received_on, payment.recorded_at, (0, key, ""))
    return (payment.received_on, payment.recorded_at, (1, 0, str(key)))


def _validate(installments: Sequence[InstallmentDue], payments: Sequence[PaymentIn]) -> None:
    """Raise ValueError for inputs no real loan can have."""
    numbers = [item.number for item in installments]
    if len(set(numbers)) != len(numbers):
        raise ValueError("installment numbers must be unique")
    for item in installments:
        if item.principal < 0 or item.interest < 0:
            raise ValueError(f"installment {item.number} has a negative amount")
    for payment in payments:
        if not payment.amount.is_finite() or payment.amount < 0:
            raise ValueError(f"payment {payment.key!r} must have a non-negative amount")


@dataclass(frozen=True)
class SettledPart:
    """What an early settlement pays and waives on one instalment."""

    number: int
    principal: Decimal
    interest: Decimal
    interest_waived: Decimal


Settle = Callable[[Sequence[InstallmentBalance], date], Sequence[SettledPart]]


def allocate(
    installments: Sequence[InstallmentDue],
    payments: Iterable[PaymentIn],
    settle: Settle | None = None,
) -> AllocationResult:
    """Apply payments in (received_on, recorded_at, key) order to the oldest instalment first.

    A settling payment is split by ``settle`` (lending.settlement, given the loan's terms) from
    the balances the payments before it left; whatever it does not cover is unallocated.
    """
    ordered = sorted(payments, key=payment_order)
    _validate(installments, ordered)
    running = [
        _Running(item) for item in sorted(installments, key=lambda i: (i.due_date, i.number))
    ]
    allocations: list[Allocation] = []
    unallocated = _ZERO
    cursor = 0
    for payment in ordered:
        if payment.settles:
            assert settle is not None, "a settling payment needs the settlement rule"
            unallocated += _apply_settlement(payment, running, settle, allocations)
            cursor = len(running)
            continue
        left = payment.amount
        while left > 0 and cursor < len(running):
            state = running[cursor]
            interest = min(left, state.due.interest - state.interest_paid)
            left -= interest
            principal = min(left, state.due.principal - state.principal_paid)
            left -= principal
            state.interest_paid += interest
            state.principal_paid += principal
            if interest > 0 or principal > 0:
                allocations.append(Allocation(payment.key, state.due.number, principal, interest))
            if state.interest_paid == state.due.interest and (
                state.principal_paid == state.due.principal
            ):
                if interest > 0 or principal > 0:
                    state.paid_on = payment.received_on
                cursor += 1
        unallocated += left
    balances = {state.due.number: state.freeze() for state in running}
    return AllocationResult(
        allocations=tuple(allocations),
        balances=tuple(balances[item.number] for item in installments),
        unallocated=unallocated,
    )


def _apply_settlement(
    payment: PaymentIn, running: list[_Running], settle: Settle, allocations: list[Allocation]
) -> Decimal:
    """Apply a settling payment; what it has beyond (or short of) what it settles."""
    parts = settle([state.freeze() for state in running], payment.received_on)
    by_number = {state.due.number: state for state in running}
    applied = _ZERO
    for part in parts:
        state = by_number[part.number]
        state.principal_paid += part.principal
        state.interest_paid += part.interest
        state.interest_waived += part.interest_waived
        applied += part.principal + part.interest
        if part.principal or part.interest or part.interest_waived:
            allocations.append(
                Allocation(
                    payment.key, part.number, part.principal, part.interest, part.interest_waived
                )
            )
            state.paid_on = payment.received_on
    return payment.amount - applied


def outstanding_total(
    installments: Sequence[InstallmentDue], payments: Iterable[PaymentIn]
) -> Decimal:
    """Everything left to pay on the loan (its payoff amount), without any interest rebate."""
    result = allocate(installments, payments)
    return sum((balance.outstanding for balance in result.balances), _ZERO)
