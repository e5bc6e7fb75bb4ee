"""Early settlement: what repays a loan in full on a date, and what of its interest is waived.

DOMAIN (Early settlement): on a date D the borrower owes everything due on or before D, the
principal of every later instalment, and the interest accrued in the current period up to D:
the next instalment's scheduled interest × (days from the previous due date, or disbursement,
to D) ÷ (days in that period), days counted by the loan's day count, rounded once (HALF_EVEN).
The rest of the later interest is waived: the rebate. ``settlement_parts`` is that rule, per
instalment; the quote and the allocation of a settling payment are both made from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext

from lending.allocation import InstallmentBalance, SettledPart
from lending.errors import DomainError, ErrorCode
from lending.money import round_money
from lending.terms import DayCount

_ZERO = Decimal(0)
_PRECISION = 50  # intermediate results exact well beyond any amount's minor unit


@dataclass(frozen=True)
class AccrualTerms:
    """What the accrual of a loan's current period depends on."""

    disbursed_on: date
    day_count: DayCount
    currency: str


@dataclass(frozen=True)
class SettlementQuote:
    """What settles a loan on ``valid_on``: ``amount`` = overdue + principal + accrued."""

    amount: Decimal
    principal: Decimal
    accrued_interest: Decimal
    overdue: Decimal
    rebate: Decimal
    valid_on: date


def days_30_360(start: date, end: date) -> int:
    """Days between two dates on the 30/360 (bond basis) convention."""
    d1 = min(start.day, 30)
    d2 = min(end.day, 30) if d1 == 30 else end.day
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def days_between(start: date, end: date, day_count: DayCount) -> int:
    """Days from ``start`` to ``end`` as the loan's day count counts them."""
    if day_count is DayCount.THIRTY_360:
        return days_30_360(start, end)
    return (end - start).days


@dataclass(frozen=True)
class Accrual:
    """The interest accrued on a day in the current period (the instalment falling due next):
    its scheduled interest × ``elapsed_days`` ÷ ``period_days``, days counted by the loan's day
    count, to 50 significant digits (``exact``), rounded once HALF_EVEN (``rounded``), less what
    was already paid of it (``owed``, never below zero)."""

    installment_number: int
    period_start: date
    period_end: date
    period_days: int
    elapsed_days: int
    scheduled_interest: Decimal
    exact: Decimal
    rounded: Decimal
    already_paid: Decimal
    owed: Decimal

    @property
    def fraction(self) -> Decimal:
        """The share of the period elapsed, to 50 significant digits."""
        with localcontext() as context:
            context.prec = _PRECISION
            return Decimal(self.elapsed_days) / self.period_days if self.period_days else _ZERO


def accrual(
    balances: Sequence[InstallmentBalance], day: date, terms: AccrualTerms
) -> Accrual | None:
    """The current period's accrual on ``day``; None after the last due date."""
    ordered = sorted(balances, key=lambda b: (b.due_date, b.number))
    upcoming = next((n for n, b in enumerate(ordered) if b.due_date > day), None)
    if upcoming is None:
        return None
    current = ordered[upcoming]
    previous = ordered[upcoming - 1].due_date if upcoming > 0 else terms.disbursed_on
    period = days_between(previous, current.due_date, terms.day_count)
    elapsed = max(0, days_between(previous, day, terms.day_count))
    exact = _ZERO
    if period > 0:
        with localcontext() as context:
            context.prec = _PRECISION
            exact = current.interest_due * elapsed / period
    rounded = round_money(exact, terms.currency)
    owed = max(_ZERO, rounded - current.interest_paid) if period > 0 else _ZERO
    return Accrual(
        current.number,
        previous,
        current.due_date,
        period,
        elapsed,
        current.interest_due,
        exact,
        rounded,
        current.interest_paid,
        owed,
    )


def settlement_parts(
    balances: Sequence[InstallmentBalance], day: date, terms: AccrualTerms
) -> list[SettledPart]:
    """What settling on ``day`` pays and waives on each instalment with something left."""
    ordered = sorted(balances, key=lambda b: (b.due_date, b.number))
    accrued = accrual(ordered, day, terms)
    parts = []
    for balance in ordered:
        principal = balance.principal_due - balance.principal_paid
        interest = balance.interest_due - balance.interest_paid - balance.interest_waived
        if balance.due_date <= day:
            part = SettledPart(balance.number, principal, interest, _ZERO)
        elif accrued is not None and balance.number == accrued.installment_number:
            owed = min(accrued.owed, interest)
            part = SettledPart(balance.number, principal, owed, interest - owed)
        else:
            part = SettledPart(balance.number, principal, _ZERO, interest)
        if part.principal or part.interest or part.interest_waived:
            parts.append(part)
    return parts


def settlement_quote(
    balances: Sequence[InstallmentBalance], day: date, terms: AccrualTerms
) -> SettlementQuote:
    """The quote of settling on ``day``, from the same parts the settlement allocates."""
    due_on = {b.number: b.due_date for b in balances}
    parts = settlement_parts(balances, day, terms)
    overdue = sum((p.principal + p.interest for p in parts if due_on[p.number] <= day), _ZERO)
    principal = sum((p.principal for p in parts if due_on[p.number] > day), _ZERO)
    accrued = sum((p.interest for p in parts if due_on[p.number] > day), _ZERO)
    rebate = sum((p.interest_waived for p in parts), _ZERO)

    def money(value: Decimal) -> Decimal:  # sums of amounts: only the scale is set here
        return round_money(value, terms.currency)

    return SettlementQuote(
        amount=money(overdue + principal + accrued),
        principal=money(principal),
        accrued_interest=money(accrued),
        overdue=money(overdue),
        rebate=money(rebate),
        valid_on=day,
    )


def check_settlement_day(
    day: date, disbursed_on: date, maturity: date, last_payment: date | None, today: date
) -> None:
    """VALIDATION_FAILED unless a loan can be settled on ``day``."""
    problem = None
    if day < disbursed_on:
        problem = f"A loan cannot be settled before it was disbursed ({disbursed_on})."
    elif day > maturity:
        problem = f"A loan cannot be settled after its maturity ({maturity}): pay what is due."
    elif day > today:
        problem = f"A settlement cannot be received in the future (today is {today})."
    elif last_payment is not None and day < last_payment:
        problem = f"A payment was received after that date ({last_payment}): settle on or after it."
    if problem is not None:
        raise DomainError(ErrorCode.VALIDATION_FAILED, problem, "receivedOn")
