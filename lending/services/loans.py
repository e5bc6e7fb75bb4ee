"""A loan's life before and after its payments: preview and book the schedule, disburse,
cancel, write off. (Payments and settlement: lending.services.payments.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Installment, Loan
from db.repositories import products as product_repo
from db.repositories import servicing as repo
from db.repositories.audit import snapshot
from lending import clock
from lending.allocation import settled_on
from lending.audit import AuditAction, Caller
from lending.errors import DomainError, DomainErrors, ErrorCode, check_version
from lending.money import parse_amount, parse_currency, parse_rate
from lending.repayment import (
    MAX_TERM_MONTHS,
    left_to_pay,
    loan_schedule,
    schedule_terms,
)
from lending.schedule import Schedule, build_schedule
from lending.services.audit import Change, record
from lending.services.payments import ledger, locked_loan
from lending.states import LoanAction, next_loan_status
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency
from lending.validation import (
    MAX_REASON_LENGTH,
    check_amount_in_range,
    check_product_open,
    check_term_in_range,
    clean_text,
)


@dataclass(frozen=True)
class ExplicitTerms:
    """Terms of a preview given without a product."""

    currency: str
    annual_interest_rate: object
    amortization: AmortizationMethod
    frequency: RepaymentFrequency
    day_count: DayCount


async def preview_schedule(
    session: AsyncSession,
    *,
    product_code: str | None,
    explicit: ExplicitTerms | None,
    amount: object,
    term_months: int,
    disbursed_on: date | None,
    first_due_date: date | None,
) -> Schedule:
    """The schedule a loan would get: the same function that books disbursed loans."""
    if (product_code is None) == (explicit is None):
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, "Give either productCode or terms, not both.", "terms"
        )
    errors: list[DomainError] = []
    if product_code is not None:
        product = await product_repo.product_by_code(session, product_code.strip())
        check_product_open(product, product_code, "productCode")
        assert product is not None
        currency, rate = product.currency, product.annual_interest_rate
        method, frequency, day_count = product.amortization, product.frequency, product.day_count
    else:
        assert explicit is not None
        method, frequency, day_count = explicit.amortization, explicit.frequency, explicit.day_count
        rate = Decimal(0)
        try:
            rate = parse_rate(explicit.annual_interest_rate, "terms.annualInterestRate")
        except DomainError as e:
            errors.append(e)
        try:
            currency = parse_currency(explicit.currency, "terms.currency")
        except DomainError as e:
            errors.append(e)
            raise DomainErrors(errors) from None  # no amount can be read without a currency
        product = None
    principal = Decimal(0)
    try:
        principal = parse_amount(amount, currency, "amount")
        if product is not None:
            check_amount_in_range(principal, product, "amount")
    except DomainError as e:
        errors.append(e)
    try:
        if product is not None:
            check_term_in_range(term_months, product, "termMonths")
        elif not 1 <= term_months <= MAX_TERM_MONTHS:
            raise DomainError(
                ErrorCode.TERM_OUT_OF_RANGE,
                f"The term must be 1 to {MAX_TERM_MONTHS} months.",
                "termMonths",
            )
    except DomainError as e:
        errors.append(e)
    if errors:
        raise DomainErrors(errors)
    terms = schedule_terms(
        principal=principal,
        annual_rate=rate,
        term_months=term_months,
        method=method,
        frequency=frequency,
        day_count=day_count,
        currency=currency,
        disbursed_on=disbursed_on or clock.today(),
        first_due_date=first_due_date,
    )
    return build_schedule(terms)


@dataclass(frozen=True)
class Disbursed:
    """A disbursed loan and the schedule booked for it, in order."""

    loan: Loan
    installments: Sequence[Installment]


async def disburse_loan(
    session: AsyncSession,
    caller: Caller,
    *,
    loan_id: int,
    disbursed_on: date | None,
    first_due_date: date | None,
    expected_version: int | None = None,
    today: date | None = None,
) -> Disbursed:
    """Pay out an approved loan: book its schedule and make it ACTIVE."""
    today = today or clock.today()
    loan = await locked_loan(session, loan_id)
    check_version(expected_version, loan.version)
    before = snapshot(loan)
    status = next_loan_status(loan.status, LoanAction.DISBURSE)
    disbursed_on = disbursed_on or today
    if disbursed_on > today:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, "A loan cannot be disbursed in the future.", "disbursedOn"
        )
    if disbursed_on < loan.approved_at.date():
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            f"A loan cannot be disbursed before it was approved ({loan.approved_at.date()}).",
            "disbursedOn",
        )
    schedule = loan_schedule(loan, disbursed_on, first_due_date)
    installments = [
        Installment.of(
            loan_id=loan.id,
            number=row.number,
            due_date=row.due_date,
            principal_due=row.principal,
            interest_due=row.interest,
            balance_after=row.balance_after,
            settled_on=settled_on(row.due_date, row.total, row.total, None),
        )
        for row in schedule.installments
    ]
    loan = await repo.book_schedule(
        session,
        loan,
        installments,
        status=status,
        disbursed_on=disbursed_on,
        maturity_date=schedule.maturity_date,
    )
    await record(
        session,
        caller,
        Change(AuditAction.LOAN_DISBURSED, loan, before, loan_id=loan.id),
        application_id=loan.application_id,
    )
    return Disbursed(loan=loan, installments=installments)


async def cancel_loan(
    session: AsyncSession,
    caller: Caller,
    *,
    loan_id: int,
    reason: str,
    expected_version: int | None = None,
) -> Loan:
    """Cancel an APPROVED loan before it is paid out; the reason is kept on it."""
    loan = await locked_loan(session, loan_id)
    check_version(expected_version, loan.version)
    status = next_loan_status(loan.status, LoanAction.CANCEL)
    why = _closing_reason(reason)
    before = snapshot(loan)
    loan = await repo.update_loan(session, loan, status=status, closed_reason=why, closed=True)
    await record(
        session,
        caller,
        Change(AuditAction.LOAN_CANCELLED, loan, before, loan_id=loan.id),
        application_id=loan.application_id,
    )
    return loan


async def write_off_loan(
    session: AsyncSession,
    caller: Caller,
    *,
    loan_id: int,
    reason: str,
    expected_version: int | None = None,
) -> Loan:
    """Write an ACTIVE loan off: what is left to pay on the day is stored, and no more comes."""
    loan = await locked_loan(session, loan_id)
    check_version(expected_version, loan.version)
    status = next_loan_status(loan.status, LoanAction.WRITE_OFF)
    why = _closing_reason(reason)
    current = await ledger(session, loan)
    before = snapshot(loan)
    loan = await repo.update_loan(
        session,
        loan,
        status=status,
        closed_reason=why,
        closed=True,
        written_off_amount=left_to_pay(current.allocation.balances),
    )
    await record(
        session,
        caller,
        Change(AuditAction.LOAN_WRITTEN_OFF, loan, before, loan_id=loan.id),
        application_id=loan.application_id,
    )
    return loan


def _closing_reason(reason: str) -> str:
    why = clean_text(
        reason,
        "reason",
        max_length=MAX_REASON_LENGTH,
        required=True,
        label="Reason",
        multiline=True,
    )
    assert why is not None
    return why
