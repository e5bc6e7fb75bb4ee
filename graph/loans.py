"""Root fields for loans: the queries, and the mutations that disburse, pay, settle, cancel
and write off."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db.reads.plan import Domain
from db.records import InstallmentRecord
from graph.compiled.reads import AS_NODE, Page, reads
from graph.context import Info
from graph.ids import key_of
from graph.loaders import Loaders
from graph.mutation import IdempotentInput, Payload, VersionedInput, run_mutation, written
from graph.permissions import (
    CANCEL_LOAN,
    DISBURSE,
    READ,
    RECORD_PAYMENT,
    REVERSE_PAYMENT,
    SETTLE_LOAN,
    WRITE_OFF_LOAN,
)
from graph.relations import lookup, page_of
from graph.relay import After, Before, Connection, First, Last
from graph.types.loans import Loan, LoanFilterArg, loan_page
from graph.types.servicing import Payment
from lending.audit import Caller
from lending.services import loans as service
from lending.services import payments

LOANS = Page(Domain.LOANS, loan_page)


@strawberry.type
class LoanQueries:
    loan: Loan | None = lookup(READ, Loan, "One loan by global id; null when there is none.")

    @READ.field("Loans, most recently approved first.", metadata=reads(LOANS))
    async def loans(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: LoanFilterArg = None,
    ) -> Connection[Loan]:
        return await page_of(info, LOANS, loan_page(first, after, filter, last, before))


@strawberry.input(description="Pay out an approved loan.")
class DisburseLoanInput(VersionedInput):
    loan_id: strawberry.ID = strawberry.field(description="Global id of an APPROVED loan.")
    disbursed_on: date | None = strawberry.field(
        default=None, description="When the money was paid out; default today (UTC), not later."
    )
    first_due_date: date | None = strawberry.field(
        default=None, description="First due date; default one period after disbursement."
    )


@strawberry.type(description="Result of disburseLoan.")
class DisburseLoanPayload(Payload):
    loan: Loan | None = strawberry.field(
        metadata=reads(AS_NODE),
        default=None,
        description="The loan, now ACTIVE with its schedule; null when there are userErrors.",
    )
    booked: strawberry.Private[Sequence[InstallmentRecord]] = ()

    def prime(self, loaders: Loaders) -> None:
        """Also the schedule just booked, so the payload reads none of it back."""
        super().prime(loaders)
        if self.loan is not None and self.booked:
            loaders.prime(self.booked)
            loaders.installments_by_loan.prime(self.loan.key, list(self.booked))
            # A loan is disbursed before any payment can be recorded on it: nothing allocated.
            loaders.allocations_by_loan.prime(self.loan.key, [])


@strawberry.input(description="Money received on an active loan.")
class RecordPaymentInput(IdempotentInput):
    loan_id: strawberry.ID = strawberry.field(description="Global id of an ACTIVE loan.")
    amount: Decimal = strawberry.field(
        description="Amount received, in the loan's currency; at most the payoff amount."
    )
    received_on: date | None = strawberry.field(
        default=None,
        description="When it was received: not before disbursement, not in the future; "
        "default today (UTC).",
    )
    reference: str | None = strawberry.field(
        default=None, description="External reference (bank transfer id…), unique per loan."
    )


@strawberry.type(description="Result of recordPayment or reversePayment.")
class PaymentPayload(Payload):
    payment: Payment | None = strawberry.field(
        metadata=reads(AS_NODE),
        default=None,
        description="The payment with its allocations; null when there are userErrors.",
    )
    loan: Loan | None = strawberry.field(
        metadata=reads(AS_NODE), default=None, description="The loan afterwards."
    )


@strawberry.input(description="Undo a payment recorded by mistake.")
class ReversePaymentInput(IdempotentInput):
    payment_id: strawberry.ID = strawberry.field(description="Global id of the payment.")
    reason: str | None = strawberry.field(default=None, description="Why, up to 2000 characters.")


@strawberry.input(description="Repay an active loan early, in full.")
class SettleLoanInput(VersionedInput):
    loan_id: strawberry.ID = strawberry.field(description="Global id of an ACTIVE loan.")
    amount: Decimal = strawberry.field(
        description="Exactly the loan's settlementQuote(asOf: receivedOn).amount; any other "
        "amount is SETTLEMENT_AMOUNT_MISMATCH (the message gives the right one)."
    )
    received_on: date | None = strawberry.field(
        default=None,
        description="When it was received: not before disbursement or the latest payment, not "
        "after maturity, not in the future; default today (UTC).",
    )
    reference: str | None = strawberry.field(
        default=None, description="External reference (bank transfer id…), unique per loan."
    )


@strawberry.type(description="Result of settleLoan.")
class SettleLoanPayload(Payload):
    payment: Payment | None = strawberry.field(
        metadata=reads(AS_NODE),
        default=None,
        description="The settlement payment with its allocations (the interest waived shows "
        "on each); null when there are userErrors.",
    )
    loan: Loan | None = strawberry.field(
        metadata=reads(AS_NODE),
        default=None,
        description="The loan afterwards: PAID_OFF, with its settlementRebate.",
    )


@strawberry.input(description="Call off an approved loan before it is paid out.")
class CancelLoanInput(VersionedInput):
    loan_id: strawberry.ID = strawberry.field(description="Global id of an APPROVED loan.")
    reason: str = strawberry.field(description="Why, 1 to 2000 characters.")


@strawberry.type(description="Result of cancelLoan.")
class CancelLoanPayload(Payload):
    loan: Loan | None = strawberry.field(
        metadata=reads(AS_NODE),
        default=None,
        description="The loan, now CANCELLED; null when there are userErrors.",
    )


@strawberry.input(description="Give up on collecting an active loan.")
class WriteOffLoanInput(VersionedInput):
    loan_id: strawberry.ID = strawberry.field(description="Global id of an ACTIVE loan.")
    reason: str = strawberry.field(description="Why, 1 to 2000 characters.")


@strawberry.type(description="Result of writeOffLoan.")
class WriteOffLoanPayload(Payload):
    loan: Loan | None = strawberry.field(
        metadata=reads(AS_NODE),
        default=None,
        description="The loan, now WRITTEN_OFF with its writtenOffAmount; null when there are "
        "userErrors.",
    )


@strawberry.type
class LoanMutations:
    @DISBURSE.mutation("Pay out an APPROVED loan: books its schedule and makes it ACTIVE.")
    async def disburse_loan(
        self,
        info: Info,
        input: Annotated[DisburseLoanInput, strawberry.argument(description="What to disburse.")],
    ) -> DisburseLoanPayload:
        async def work(session: AsyncSession, caller: Caller) -> DisburseLoanPayload:
            disbursed = await service.disburse_loan(
                session,
                caller,
                loan_id=key_of(input.loan_id, "Loan", "loanId"),
                disbursed_on=input.disbursed_on,
                first_due_date=input.first_due_date,
                expected_version=input.expected_version,
            )
            return DisburseLoanPayload(
                loan=written(Loan, disbursed.loan), booked=disbursed.installments
            )

        return await run_mutation(info, DisburseLoanPayload, input, work)

    @RECORD_PAYMENT.mutation(
        "Record money received. It is applied to the oldest instalment first, interest before "
        "principal; the loan is PAID_OFF when nothing is left. OVERPAYMENT when it exceeds the "
        "payoff amount."
    )
    async def record_payment(
        self,
        info: Info,
        input: Annotated[RecordPaymentInput, strawberry.argument(description="The payment.")],
    ) -> PaymentPayload:
        async def work(session: AsyncSession, caller: Caller) -> PaymentPayload:
            result = await payments.record_payment(
                session,
                caller,
                loan_id=key_of(input.loan_id, "Loan", "loanId"),
                amount=input.amount,
                received_on=input.received_on,
                reference=input.reference,
            )
            return PaymentPayload(
                payment=written(Payment, result.payment), loan=written(Loan, result.loan)
            )

        return await run_mutation(info, PaymentPayload, input, work)

    @REVERSE_PAYMENT.mutation(
        "Mark a payment reversed (it is kept) and re-apply the remaining payments. "
        "ALREADY_REVERSED the second time."
    )
    async def reverse_payment(
        self,
        info: Info,
        input: Annotated[ReversePaymentInput, strawberry.argument(description="What to reverse.")],
    ) -> PaymentPayload:
        async def work(session: AsyncSession, caller: Caller) -> PaymentPayload:
            result = await payments.reverse_payment(
                session,
                caller,
                payment_id=key_of(input.payment_id, "Payment", "paymentId"),
                reason=input.reason,
            )
            return PaymentPayload(
                payment=written(Payment, result.payment), loan=written(Loan, result.loan)
            )

        return await run_mutation(info, PaymentPayload, input, work)

    @SETTLE_LOAN.mutation(
        "Repay an ACTIVE loan early: a payment of exactly its settlement amount on a date. The "
        "interest not yet accrued is waived and the loan becomes PAID_OFF; reversing the "
        "payment (reversePayment) restores it."
    )
    async def settle_loan(
        self,
        info: Info,
        input: Annotated[SettleLoanInput, strawberry.argument(description="The settlement.")],
    ) -> SettleLoanPayload:
        async def work(session: AsyncSession, caller: Caller) -> SettleLoanPayload:
            result = await payments.settle_loan(
                session,
                caller,
                loan_id=key_of(input.loan_id, "Loan", "loanId"),
                amount=input.amount,
                received_on=input.received_on,
                reference=input.reference,
                expected_version=input.expected_version,
            )
            return SettleLoanPayload(
                payment=written(Payment, result.payment), loan=written(Loan, result.loan)
            )

        return await run_mutation(info, SettleLoanPayload, input, work)

    @CANCEL_LOAN.mutation("Cancel an APPROVED loan that was not paid out (final).")
    async def cancel_loan(
        self,
        info: Info,
        input: Annotated[CancelLoanInput, strawberry.argument(description="What to cancel.")],
    ) -> CancelLoanPayload:
        async def work(session: AsyncSession, caller: Caller) -> CancelLoanPayload:
            loan = await service.cancel_loan(
                session,
                caller,
                loan_id=key_of(input.loan_id, "Loan", "loanId"),
                reason=input.reason,
                expected_version=input.expected_version,
            )
            return CancelLoanPayload(loan=written(Loan, loan))

        return await run_mutation(info, CancelLoanPayload, input, work)

    @WRITE_OFF_LOAN.mutation(
        "Write an ACTIVE loan off (final): what is left to pay today is stored on it, and no "
        "payment is taken afterwards."
    )
    async def write_off_loan(
        self,
        info: Info,
        input: Annotated[WriteOffLoanInput, strawberry.argument(description="What to write off.")],
    ) -> WriteOffLoanPayload:
        async def work(session: AsyncSession, caller: Caller) -> WriteOffLoanPayload:
            loan = await service.write_off_loan(
                session,
                caller,
                loan_id=key_of(input.loan_id, "Loan", "loanId"),
                reason=input.reason,
                expected_version=input.expected_version,
            )
            return WriteOffLoanPayload(loan=written(Loan, loan))

        return await run_mutation(info, WriteOffLoanPayload, input, work)
