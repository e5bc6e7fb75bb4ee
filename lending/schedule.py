"""Repayment schedules: due dates, periodic rates and the split of each instalment."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, localcontext
from typing import Protocol

from lending.money import minor_digits, round_money
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

# Intermediate results must be exact well beyond the largest amount's minor unit.
_PRECISION = 50

_PERIODS_PER_YEAR: dict[RepaymentFrequency, int] = {
    RepaymentFrequency.MONTHLY: 12,
    RepaymentFrequency.BIWEEKLY: 26,
    RepaymentFrequency.WEEKLY: 52,
}

_PERIOD_DAYS: dict[RepaymentFrequency, int] = {
    RepaymentFrequency.BIWEEKLY: 14,
    RepaymentFrequency.WEEKLY: 7,
}

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_DAYS_PER_YEAR = Decimal(365)


@dataclass(frozen=True)
class ScheduleTerms:
    """Everything that determines a repayment schedule; ``annual_rate`` is in percent."""

    principal: Decimal
    annual_rate: Decimal
    installments: int
    method: AmortizationMethod
    frequency: RepaymentFrequency
    day_count: DayCount
    currency: str
    disbursed_on: date
    first_due_date: date | None = None


@dataclass(frozen=True)
class ScheduledInstallment:
    """One instalment: when it falls due, its split and the principal left after it."""

    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    total: Decimal
    balance_after: Decimal


@dataclass(frozen=True)
class Schedule:
    """A complete repayment schedule and its totals."""

    installments: tuple[ScheduledInstallment, ...]
    total_principal: Decimal
    total_interest: Decimal
    total_payable: Decimal

    @property
    def maturity_date(self) -> date:
        """Due date of the last instalment."""
        return self.installments[-1].due_date


def _add_months(anchor_year: int, anchor_month: int, day: int, months: int) -> date:
    """The ``day`` of the month ``months`` after the anchor month, clamped to its last day."""
    index = anchor_year * 12 + (anchor_month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def due_dates(
    frequency: RepaymentFrequency,
    disbursed_on: date,
    count: int,
    first_due_date: date | None = None,
) -> list[date]:
    """Due dates of ``count`` instalments, one period apart from the first."""
    if count < 0:
        raise ValueError("count must not be negative")
    if frequency is RepaymentFrequency.MONTHLY:
        # Every date is derived from the anchor so a short month never shortens later dates.
        if first_due_date is None:
            base, offset = disbursed_on, 1
        else:
            base, offset = first_due_date, 0
        return [_add_months(base.year, base.month, base.day, k + offset) for k in range(count)]
    step = timedelta(days=_PERIOD_DAYS[frequency])
    first = disbursed_on + step if first_due_date is None else first_due_date
    return [first + step * k for k in range(count)]


def periodic_rate(annual_rate_percent: Decimal, frequency: RepaymentFrequency) -> Decimal:
    """The rate of one period as a fraction: annual percent / 100 / periods per year."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return annual_rate_percent / _HUNDRED / _PERIODS_PER_YEAR[frequency]


def _validate(terms: ScheduleTerms) -> None:
    """Raise ValueError when the terms cannot produce a schedule."""
    if terms.installments < 1:
        raise ValueError("installments must be at least 1")
    if not terms.principal.is_finite() or terms.principal <= 0:
        raise ValueError("principal must be a positive amount")
    if round_money(terms.principal, terms.currency) != terms.principal:
        raise ValueError(
            f"principal has more than {minor_digits(terms.currency)} decimal places "
            f"for {terms.currency}"
        )
    if not terms.annual_rate.is_finite() or terms.annual_rate < 0:
        raise ValueError("annual_rate must not be negative")
    if terms.first_due_date is not None and terms.first_due_date <= terms.disbursed_on:
        raise ValueError("first_due_date must be after disbursed_on")


def annuity_payment(principal: Decimal, rate: Decimal, count: int, currency: str) -> Decimal:
    """The rounded level instalment A = P*r / (1 - (1 + r)^-n), or P / n when r is zero."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        exact = principal / count if rate == 0 else principal * rate / (1 - (1 + rate) ** (-count))
        return round_money(exact, currency)


# How many decimal places of an exact (unrounded) amount are shown; cut, not rounded.
SHOWN_PLACES = 10
ROUNDING = "HALF_EVEN"


@dataclass(frozen=True)
class PeriodInterest:
    """A period's interest on a balance: ``balance × annual_rate / 100 × days / days_in_year``
    to 50 significant digits (``exact``), then rounded HALF_EVEN to the currency's minor unit.

    30/360 counts every period as its nominal days (30 a month, 14 or 7) of a year of 360 (or
    of 364 = 26 × 14 = 52 × 7): the periodic rate, annual / 100 / periods per year. ACTUAL_365
    counts the calendar days of the period in a year of 365.
    """

    days: int
    days_in_year: int
    exact: Decimal
    rounded: Decimal


def period_interest(
    balance: Decimal,
    start: date,
    end: date,
    annual_rate: Decimal,
    frequency: RepaymentFrequency,
    day_count: DayCount,
    currency: str,
) -> PeriodInterest:
    """The interest of the period from ``start`` to ``end`` (the one rule a schedule is built
    with and an instalment's calculation is shown with)."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        if day_count is DayCount.THIRTY_360:
            periods = _PERIODS_PER_YEAR[frequency]
            days = _PERIOD_DAYS.get(frequency, 30)
            exact = balance * periodic_rate(annual_rate, frequency)
            return PeriodInterest(days, days * periods, exact, round_money(exact, currency))
        days = (end - start).days
        exact = balance * annual_rate / _HUNDRED * days / _DAYS_PER_YEAR
        return PeriodInterest(days, int(_DAYS_PER_YEAR), exact, round_money(exact, currency))


@dataclass(frozen=True)
class InstallmentCalculation:
    """How one booked instalment was computed: ``interest`` on the opening balance over its
    period, ``principal`` repaid, and the balance left."""

    number: int
    opening_balance: Decimal
    period_start: date
    period_end: date
    interest: PeriodInterest
    principal: Decimal
    closing_balance: Decimal


class BookedInstallment(Protocol):
    """A booked instalment, as stored."""

    @property
    def number(self) -> int: ...
    @property
    def due_date(self) -> date: ...
    @property
    def principal_due(self) -> Decimal: ...
    @property
    def interest_due(self) -> Decimal: ...
    @property
    def balance_after(self) -> Decimal: ...


def calculations(
    booked: Sequence[BookedInstallment],
    principal: Decimal,
    annual_rate: Decimal,
    frequency: RepaymentFrequency,
    day_count: DayCount,
    currency: str,
    disbursed_on: date,
) -> list[InstallmentCalculation]:
    """Each booked instalment's calculation, from the rows in order: the opening balance is the
    previous instalment's closing one (the principal lent for the first), its period starts at
    the previous due date (disbursement for the first), and its interest is ``period_interest``
    as ``build_schedule`` computed it."""
    out = []
    balance, previous = principal, disbursed_on
    for row in sorted(booked, key=lambda r: r.number):
        interest = period_interest(
            balance, previous, row.due_date, annual_rate, frequency, day_count, currency
        )
        out.append(
            InstallmentCalculation(
                row.number,
                balance,
                previous,
                row.due_date,
                interest,
                row.principal_due,
                row.balance_after,
            )
        )
        balance, previous = row.balance_after, row.due_date
    return out


def build_schedule(terms: ScheduleTerms) -> Schedule:
    """Build the repayment schedule of ``terms`` (the one code path for preview and booking)."""
    _validate(terms)
    currency = terms.currency
    count = terms.installments
    dates = due_dates(terms.frequency, terms.disbursed_on, count, terms.first_due_date)
    rate = periodic_rate(terms.annual_rate, terms.frequency)
    if terms.method is AmortizationMethod.ANNUITY:
        level = annuity_payment(terms.principal, rate, count, currency)
    else:
        with localcontext() as ctx:
            ctx.prec = _PRECISION
            level = round_money(terms.principal / count, currency)

    zero = round_money(_ZERO, currency)
    rows: list[ScheduledInstallment] = []
    balance = terms.principal
    previous = terms.disbursed_on
    for number, due in enumerate(dates, start=1):
        interest = period_interest(
            balance,
            previous,
            due,
            terms.annual_rate,
            terms.frequency,
            terms.day_count,
            currency,
        ).rounded
        if number == count:
            principal = balance
        elif terms.method is AmortizationMethod.ANNUITY:
            # Interest is always charged in full and negative principal would capitalise it, so
            # principal is floored at zero and what stays unpaid is left for the last instalment.
            principal = max(level - interest, zero)
        else:
            principal = level
        # Rounding of A or P/n can otherwise repay more than is left before the last instalment.
        principal = min(principal, balance)
        balance -= principal
        rows.append(
            ScheduledInstallment(
                number=number,
                due_date=due,
                principal=principal,
                interest=interest,
                total=principal + interest,
                balance_after=balance,
            )
        )
        previous = due

    total_principal = sum((row.principal for row in rows), zero)
    total_interest = sum((row.interest for row in rows), zero)
    return Schedule(
        installments=tuple(rows),
        total_principal=round_money(total_principal, currency),
        total_interest=round_money(total_interest, currency),
        total_payable=round_money(total_principal + total_interest, currency),
    )
