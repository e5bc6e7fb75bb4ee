"""Money on a disbursed loan: record and reverse payments, settle early, and the balances.

Allocations are derived data (DOMAIN: Payments): after every payment, reversal or settlement
the loan's allocations are recomputed from its live payments, and its status follows. Every
function here locks the loan row first, so payments on one loan take turns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Loan, Payment, PaymentAllocation
from db.repositories import servicing as repo
from db.repositories.audit import snapshot
from lending import clock
from lending.allocation import AllocationResult, InstallmentDue, PaymentIn, allocate
from lending.audit import AuditAction, Caller
from lending.errors import DomainError, ErrorCode, check_version
from lending.money import parse_amount
from lending.repayment import check_not_overpaid, check_received_on, left_to_pay
from lending.services.audit import Change, record
from lending.settlement import (
    AccrualTerms,
    SettlementQuote,
    check_settlement_day,
    settlement_parts,
    settlement_quote,
)
from lending.states import LoanAction, LoanStatus, next_loan_status
from lending.validation import MAX_REASON_LENGTH, clean_text


async def locked_loan(session: AsyncSession, loan_id: int) -> Loan:
    """The loan, locked until the transaction ends, or NOT_FOUND."""
    loan = await repo.lock_loan(session, loan_id)
    if loan is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such loan.", "loanId")
    return loan


def accrual_terms(loan: Loan) -> AccrualTerms:
    """What the settlement rule needs of a disbursed loan."""
    assert loan.disbursed_on is not None
    return AccrualTerms(loan.disbursed_on, loan.day_count, loan.currency)


@dataclass(frozen=True)
class Ledger:
    """A loan's instalments and live payments, and how the payments are allocated now."""

    installments: list[repo.ScheduledInstallment]
    payments: list[repo.LivePayment]
    allocation: AllocationResult


def _allocate(
    loan: Loan,
    installments: list[repo.ScheduledInstallment],
    payments: list[repo.LivePayment],
) -> AllocationResult:
    terms = accrual_terms(loan)
    return allocate(
        [
            InstallmentDue(i.number, i.due_date, i.principal_due, i.interest_due)
            for i in installments
        ],
        [PaymentIn(p.id, p.amount, p.received_on, p.recorded_at, p.settlement) for p in payments],
        settle=lambda balances, day: settlement_parts(balances, day, terms),
    )


async def ledger(session: AsyncSession, loan: Loan) -> Ledger:
    """A disbursed loan's instalments, live payments and their allocation (one statement)."""
    installments, payments = await repo.allocation_inputs(session, loan.id)
    return Ledger(installments, payments, _allocate(loan, installments, payments))


async def _reallocate(
    session: AsyncSession,
    loan: Loan,
    installments: list[repo.ScheduledInstallment],
    payments: list[repo.LivePayment],
    status: LoanStatus,
    **values: object,
) -> Loan:
    """Re-derive a loan's allocations from its live ``payments``, and move it to ``status``.

    The loan becomes PAID_OFF instead when nothing is left to pay; its version is bumped.
    """
    result = _allocate(loan, installments, payments)
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
            PaymentAllocation.of(
                loan_id=loan.id,
                payment_id=a.payment_key,
                installment_id=by_number[a.installment_number].id,
                received_on=received[a.payment_key],  # type: ignore[index]
                principal=a.principal,
                interest=a.interest,
                interest_waived=a.interest_waived,
            )
            for a in result.allocations
        ],
        [repo.InstallmentSettled(by_number[b.number].id, b.settled_on) for b in result.balances],
        status=status,
        **values,
    )


@dataclass(frozen=True)
class PaymentResult:
    """A payment (recorded, reversed or settling) and its loan afterwards."""

    payment: Payment
    loan: Loan


async def _add_payment(
    session: AsyncSession, caller: Caller, loan: Loan, **values: object
) -> Payment:
    payment = await repo.add_payment(
        session, Payment(loan_id=loan.id, recorded_by=caller.actor, **values)
    )
    if payment is None:
        raise DomainError(
            ErrorCode.DUPLICATE_PAYMENT_REFERENCE,
            f"A payment with reference {values['reference']!r} is already recorded on this loan.",
            "reference",
        )
    return payment


def _reference(reference: str | None) -> str | None:
    return clean_text(reference, "reference", max_length=100, required=False, label="Reference")


def _live(payment: Payment) -> repo.LivePayment:
    return repo.LivePayment(
        payment.id, payment.amount, payment.received_on, payment.recorded_at, payment.settlement
    )


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
    loan = await locked_loan(session, loan_id)
    next_loan_status(loan.status, LoanAction.RECORD_PAYMENT)
    assert loan.disbursed_on is not None
    value = parse_amount(amount, loan.currency, "amount")
    received_on = received_on or today
    check_received_on(received_on, loan.disbursed_on, today)
    clean_reference = _reference(reference)
    current = await ledger(session, loan)
    check_not_overpaid(value, left_to_pay(current.allocation.balances), loan.currency)
    payment = await _add_payment(
        session, caller, loan, reference=clean_reference, amount=value, received_on=received_on
    )
    before = snapshot(loan)
    live = [*current.payments, _live(payment)]
    loan = await _reallocate(session, loan, current.installments, live, loan.status)
    changes = [Change(AuditAction.PAYMENT_RECORDED, payment, loan_id=loan.id)]
    if loan.status is LoanStatus.PAID_OFF:
        changes.append(Change(AuditAction.LOAN_PAID_OFF, loan, before, loan_id=loan.id))
    await record(session, caller, *changes, application_id=loan.application_id)
    return PaymentResult(payment=payment, loan=loan)


def quote_on(loan: Loan, current: Ledger, day: date, today: date) -> SettlementQuote:
    """What settles ``loan`` on ``day``; VALIDATION_FAILED for a day it cannot be settled on."""
    assert loan.disbursed_on is not None
    assert loan.maturity_date is not None
    last = max((p.received_on for p in current.payments), default=None)
    check_settlement_day(day, loan.disbursed_on, loan.maturity_date, last, today)
    return settlement_quote(current.allocation.balances, day, accrual_terms(loan))


async def settle_loan(
    session: AsyncSession,
    caller: Caller,
    *,
    loan_id: int,
    amount: object,
    received_on: date | None,
    reference: str | None,
    expected_version: int | None = None,
    today: date | None = None,
) -> PaymentResult:
    """Repay an ACTIVE loan early: a payment of exactly its settlement amount on the day.

    The interest not yet accrued is waived (kept on the loan as its rebate) and the loan is
    PAID_OFF; reversing the payment restores everything as it was.
    """
    today = today or clock.today()
    loan = await locked_loan(session, loan_id)
    check_version(expected_version, loan.version)
    next_loan_status(loan.status, LoanAction.SETTLE)
    value = parse_amount(amount, loan.currency, "amount")
    day = received_on or today
    clean_reference = _reference(reference)
    current = await ledger(session, loan)
    quote = quote_on(loan, current, day, today)
    if value != quote.amount:
        raise DomainError(
            ErrorCode.SETTLEMENT_AMOUNT_MISMATCH,
            f"Settling on {day} takes exactly {quote.amount} {loan.currency} "
            f"(got {value}): {quote.overdue} overdue or due, {quote.principal} principal, "
            f"{quote.accrued_interest} accrued interest.",
            "amount",
        )
    payment = await _add_payment(
        session,
        caller,
        loan,
        reference=clean_reference,
        amount=value,
        received_on=day,
        settlement=True,
    )
    before = snapshot(loan)
    live = [*current.payments, _live(payment)]
    loan = await _reallocate(
        session,
        loan,
        current.installments,
        live,
        LoanStatus.PAID_OFF,
        settlement_rebate=quote.rebate,
    )
    await record(
        session,
        caller,
        Change(AuditAction.PAYMENT_RECORDED, payment, loan_id=loan.id),
        Change(AuditAction.LOAN_SETTLED, loan, before, loan_id=loan.id),
        application_id=loan.application_id,
    )
    return PaymentResult(payment=payment, loan=loan)


async def reverse_payment(
    session: AsyncSession, caller: Caller, *, payment_id: int, reason: str | None
) -> PaymentResult:
    """Mark a payment reversed (it is never deleted) and re-derive the allocations.

    While a loan stands settled, only the settlement itself can be reversed (it was computed
    from the payments before it); reversing it restores the loan as it was before.
    """
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
    loan = await locked_loan(session, loan_id)
    payment = await repo.lock_payment(session, payment_id)
    assert payment is not None
    if payment.reversed_at is not None:
        raise DomainError(
            ErrorCode.ALREADY_REVERSED,
            f"The payment was already reversed on {payment.reversed_at.date()}.",
            "paymentId",
        )
    status = next_loan_status(loan.status, LoanAction.REVERSE_PAYMENT)
    installments, payments = await repo.allocation_inputs(session, loan.id)
    if not payment.settlement and any(p.settlement for p in payments):
        raise DomainError(
            ErrorCode.INVALID_TRANSITION,
            "The loan was settled early: reverse the settlement payment first.",
            "paymentId",
        )
    payment_before, loan_before = snapshot(payment), snapshot(loan)
    payment = await repo.mark_reversed(session, payment, by=caller.actor, reason=clean_reason)
    live = [p for p in payments if p.id != payment.id]
    was_paid_off = loan.status is LoanStatus.PAID_OFF
    extra = {"settlement_rebate": None} if payment.settlement else {}
    loan = await _reallocate(session, loan, installments, live, status, **extra)
    changes = [Change(AuditAction.PAYMENT_REVERSED, payment, payment_before, loan_id=loan.id)]
    if was_paid_off and loan.status is LoanStatus.ACTIVE:
        changes.append(Change(AuditAction.LOAN_REOPENED, loan, loan_before, loan_id=loan.id))
    await record(session, caller, *changes, application_id=loan.application_id)
    return PaymentResult(payment=payment, loan=loan)
