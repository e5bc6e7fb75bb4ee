"""Servicing: preview and book schedules, disburse, record and reverse payments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Installment, Loan, Payment, PaymentAllocation
from db.repositories import products as product_repo
from db.repositories import servicing as repo
from db.repositories.audit import snapshot
from lending import clock
from lending.allocation import (
    AllocationResult,
    InstallmentDue,
    PaymentIn,
    allocate,
)
from lending.audit import AuditAction, Caller
from lending.errors import DomainError, DomainErrors, ErrorCode, check_version
from lending.money import parse_amount, parse_currency, parse_rate
from lending.repayment import (
    MAX_TERM_MONTHS,
    check_not_overpaid,
    check_received_on,
    left_to_pay,
    loan_schedule,
    schedule_terms,
)
from lending.schedule import Schedule, build_schedule
from lending.services.audit import Change, record
from lending.states import LoanAction, LoanStatus, next_loan_status
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


async def _locked_loan(session: AsyncSession, loan_id: int) -> Loan:
    loan = await repo.lock_loan(session, loan_id)
    if loan is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such loan.", "loanId")
    return loan


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
    loan = await _locked_loan(session, loan_id)
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
        Installment(
            loan_id=loan.id,
            number=row.number,
            due_date=row.due_date,
            principal_due=row.principal,
            interest_due=row.interest,
            balance_after=row.balance_after,
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


def _allocate(
    installments: Sequence[repo.ScheduledInstallment], payments: Sequence[repo.LivePayment]
) -> AllocationResult:
    """Allocate ``payments`` to a loan's instalments."""
    return allocate(
        [
            InstallmentDue(i.number, i.due_date, i.principal_due, i.interest_due)
            for i in installments
        ],
        [PaymentIn(p.id, p.amount, p.received_on, p.recorded_at) for p in payments],
    )


async def _reallocate(
    session: AsyncSession,
    loan: Loan,
    installments: Sequence[repo.ScheduledInstallment],
    payments: Sequence[repo.LivePayment],
    status: LoanStatus,
) -> Loan:
    """Re-derive a loan's allocations from its live ``payments``, and move it to ``status``.

    The loan becomes PAID_OFF instead when nothing is left to pay; its version is bumped.
    """
    result = _allocate(installments, payments)
    if result.unallocated:
        raise AssertionError(f"loan {loan.id}: {result.unallocated} could not be allocated")
    by_number = {i.number: i for i in installments}
    received = {p.id: p.received_on for p in payments}
    if left_to_pay(result.balances) == 0:
        status = LoanStatus.PAID_OFF
    return await repo.replace_allocations(
        session,
        loan,
        [
            PaymentAllocation(
                loan_id=loan.id,
                payment_id=a.payment_key,
                installment_id=by_number[a.installment_number].id,
                received_on=received[a.payment_key],  # type: ignore[index]
                principal=a.principal,
                interest=a.interest,
            )
            for a in result.allocations
        ],
        status=status,
    )


@dataclass(frozen=True)
class PaymentResult:
    """A payment (recorded or reversed) and its loan afterwards."""

    payment: Payment
    loan: Loan


async def record_payment(
    session: AsyncSession,
    caller: Caller,
    *,
    loan_id: int,
    amount: object,
    received_on: date | None,
    reference: str | None,
    today: date | None = None,
) -> PaymentResult:
    """Record money received and re-derive the allocations; PAID_OFF when nothing is left."""
    today = today or clock.today()
    # The loan row lock serializes concurrent payments on one loan.
    loan = await _locked_loan(session, loan_id)
    next_loan_status(loan.status, LoanAction.RECORD_PAYMENT)
    assert loan.disbursed_on is not None
    value = parse_amount(amount, loan.currency, "amount")
    received_on = received_on or today
    check_received_on(received_on, loan.disbursed_on, today)
    clean_reference = clean_text(
        reference, "reference", max_length=100, required=False, label="Reference"
    )
    installments, payments = await repo.allocation_inputs(session, loan.id)
    current = _allocate(installments, payments)
    check_not_overpaid(value, left_to_pay(current.balances), loan.currency)
    payment = await repo.add_payment(
        session,
        Payment(
            loan_id=loan.id,
            reference=clean_reference,
            amount=value,
            received_on=received_on,
            recorded_by=caller.actor,
        ),
    )
    if payment is None:
        raise DomainError(
            ErrorCode.DUPLICATE_PAYMENT_REFERENCE,
            f"A payment with reference {clean_reference!r} is already recorded on this loan.",
            "reference",
        )
    before = snapshot(loan)
    live = [
        *payments,
        repo.LivePayment(payment.id, payment.amount, payment.received_on, payment.recorded_at),
    ]
    loan = await _reallocate(session, loan, installments, live, loan.status)
    changes = [Change(AuditAction.PAYMENT_RECORDED, payment, loan_id=loan.id)]
    if loan.status is LoanStatus.PAID_OFF:
        changes.append(Change(AuditAction.LOAN_PAID_OFF, loan, before, loan_id=loan.id))
    await record(session, caller, *changes, application_id=loan.application_id)
    return PaymentResult(payment=payment, loan=loan)


async def reverse_payment(
    session: AsyncSession, caller: Caller, *, payment_id: int, reason: str | None
) -> PaymentResult:
    """Mark a payment reversed (it is never deleted) and re-derive the allocations."""
    clean_reason = clean_text(
        reason,
        "reason",
        max_length=MAX_REASON_LENGTH,
        required=False,
        label="Reason",
        multiline=True,
    )
    loan_id = await repo.payment_loan_id(session, payment_id)
    if loan_id is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such payment.", "paymentId")
    loan = await _locked_loan(session, loan_id)
    payment = await repo.lock_payment(session, payment_id)
    assert payment is not None
    if payment.reversed_at is not None:
        raise DomainError(
            ErrorCode.ALREADY_REVERSED,
            f"The payment was already reversed on {payment.reversed_at.date()}.",
            "paymentId",
        )
    status = next_loan_status(loan.status, LoanAction.REVERSE_PAYMENT)
    payment_before, loan_before = snapshot(payment), snapshot(loan)
    payment = await repo.mark_reversed(session, payment, by=caller.actor, reason=clean_reason)
    installments, payments = await repo.allocation_inputs(session, loan.id)
    was_paid_off = loan.status is LoanStatus.PAID_OFF
    loan = await _reallocate(session, loan, installments, payments, status)
    changes = [Change(AuditAction.PAYMENT_REVERSED, payment, payment_before, loan_id=loan.id)]
    if was_paid_off and loan.status is LoanStatus.ACTIVE:
        changes.append(Change(AuditAction.LOAN_REOPENED, loan, loan_before, loan_id=loan.id))
    await record(session, caller, *changes, application_id=loan.application_id)
    return PaymentResult(payment=payment, loan=loan)
