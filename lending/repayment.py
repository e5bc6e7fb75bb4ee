"""Repayment rules: a loan's schedule terms, balances as of a date, payment checks."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Protocol

from lending.allocation import InstallmentBalance, InstallmentDue
from lending.errors import DomainError, ErrorCode
from lending.schedule import Schedule, ScheduleTerms, build_schedule
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

_ZERO = Decimal(0)

# How far after disbursement an explicitly given first due date may fall.
MAX_FIRST_DUE_DAYS = 92

# The longest term anything is lent or previewed for (products are held to it by the database).
MAX_TERM_MONTHS = 600


def installment_count(term_months: int, frequency: RepaymentFrequency) -> int:
    """Instalments in a term: one a month, or every 14 / 7 days over the same span (rounded up)."""
    if frequency is RepaymentFrequency.MONTHLY:
        return term_months
    per_year = 26 if frequency is RepaymentFrequency.BIWEEKLY else 52
    return math.ceil(term_months * per_year / 12)


# The most instalments a schedule can have: the longest term, paid weekly.
MAX_INSTALLMENTS = installment_count(MAX_TERM_MONTHS, RepaymentFrequency.WEEKLY)


def schedule_terms(
    *,
    principal: Decimal,
    annual_rate: Decimal,
    term_months: int,
    method: AmortizationMethod,
    frequency: RepaymentFrequency,
    day_count: DayCount,
    currency: str,
    disbursed_on: date,
    first_due_date: date | None,
) -> ScheduleTerms:
    """The schedule terms of a loan; checks the first due date (field ``firstDueDate``).

    A schedule must end within the calendar (``date.max``): disbursement is refused when even
    the latest first due date plus the whole term could not be represented.
    """
    span = MAX_FIRST_DUE_DAYS + 31 * (term_months + 1)
    if disbursed_on.toordinal() + span > date.max.toordinal():
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            f"A schedule disbursed on {disbursed_on.isoformat()} would end after "
            f"{date.max.isoformat()}.",
            "disbursedOn",
        )
    if first_due_date is not None and not (
        disbursed_on < first_due_date <= disbursed_on + timedelta(days=MAX_FIRST_DUE_DAYS)
    ):
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            f"The first due date must fall 1 to {MAX_FIRST_DUE_DAYS} days after disbursement.",
            "firstDueDate",
        )
    return ScheduleTerms(
        principal=principal,
        annual_rate=annual_rate,
        installments=installment_count(term_months, frequency),
        method=method,
        frequency=frequency,
        day_count=day_count,
        currency=currency,
        disbursed_on=disbursed_on,
        first_due_date=first_due_date,
    )


class LoanTerms(Protocol):
    """The terms of a loan that its schedule is built from (a loan row, or a plan of one)."""

    @property
    def principal(self) -> Decimal: ...
    @property
    def annual_interest_rate(self) -> Decimal: ...
    @property
    def term_months(self) -> int: ...
    @property
    def amortization(self) -> AmortizationMethod: ...
    @property
    def frequency(self) -> RepaymentFrequency: ...
    @property
    def day_count(self) -> DayCount: ...
    @property
    def currency(self) -> str: ...


def loan_schedule(loan: LoanTerms, disbursed_on: date, first_due_date: date | None) -> Schedule:
    """The schedule of a loan's terms, disbursed on ``disbursed_on``."""
    return build_schedule(
        schedule_terms(
            principal=loan.principal,
            annual_rate=loan.annual_interest_rate,
            term_months=loan.term_months,
            method=loan.amortization,
            frequency=loan.frequency,
            day_count=loan.day_count,
            currency=loan.currency,
            disbursed_on=disbursed_on,
            first_due_date=first_due_date,
        )
    )


@dataclass(frozen=True)
class PaidPart:
    """Part of a payment applied to an instalment, with the date the payment was received."""

    installment_number: int
    principal: Decimal
    interest: Decimal
    received_on: date
    interest_waived: Decimal = _ZERO


def balances_as_of(
    installments: Sequence[InstallmentDue], parts: Iterable[PaidPart], as_of: date | None = None
) -> list[InstallmentBalance]:
    """Each instalment with what was paid against it on or before ``as_of`` (None: ever)."""
    paid: dict[int, list[PaidPart]] = {item.number: [] for item in installments}
    for part in parts:
        if as_of is None or part.received_on <= as_of:
            paid[part.installment_number].append(part)
    result = []
    for item in installments:
        mine = paid[item.number]
        principal = sum((p.principal for p in mine), _ZERO)
        interest = sum((p.interest for p in mine), _ZERO)
        waived = sum((p.interest_waived for p in mine), _ZERO)
        complete = mine and principal + interest + waived >= item.principal + item.interest
        result.append(
            InstallmentBalance(
                number=item.number,
                due_date=item.due_date,
                principal_due=item.principal,
                interest_due=item.interest,
                principal_paid=principal,
                interest_paid=interest,
                # Payments are applied in received order, so the last one completed it.
                paid_on=max(p.received_on for p in mine) if complete else None,
                interest_waived=waived,
            )
        )
    return result


def left_to_pay(balances: Iterable[InstallmentBalance]) -> Decimal:
    """Everything still to pay: prepayments reduce later instalments, with no interest rebate."""
    return sum((b.outstanding for b in balances), _ZERO)


def check_received_on(received_on: date, disbursed_on: date, today: date) -> None:
    """PAYMENT_DATE_INVALID for a date before disbursement or in the future."""
    if received_on < disbursed_on:
        raise DomainError(
            ErrorCode.PAYMENT_DATE_INVALID,
            f"A payment cannot be received before the loan was disbursed ({disbursed_on}).",
            "receivedOn",
        )
    if received_on > today:
        raise DomainError(
            ErrorCode.PAYMENT_DATE_INVALID,
            f"A payment cannot be received in the future (today is {today}).",
            "receivedOn",
        )


def check_not_overpaid(amount: Decimal, payoff: Decimal, currency: str) -> None:
    """OVERPAYMENT when ``amount`` exceeds everything left to pay."""
    if amount > payoff:
        raise DomainError(
            ErrorCode.OVERPAYMENT,
            f"The payment exceeds what is left to pay: the payoff amount is {payoff} {currency}.",
            "amount",
        )
