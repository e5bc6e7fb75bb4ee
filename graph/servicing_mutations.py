"""Servicing operations: preview a schedule, disburse a loan, record and reverse payments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

import strawberry

from graph.context import Info
from graph.errors import UserError
from graph.ids import key_of
from graph.loans import Loan
from graph.mutation import in_transaction
from graph.servicing import Payment, SchedulePreview
from lending.services import loans as service
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency


@strawberry.input(description="Loan terms given explicitly instead of a product's.")
class ScheduleTermsInput:
    """Explicit schedule terms."""

    currency: str = strawberry.field(description="ISO 4217 currency code, such as USD or JPY.")
    annual_interest_rate: Decimal = strawberry.field(description="Annual rate in percent.")
    amortization: AmortizationMethod = strawberry.field(description="How instalments are split.")
    frequency: RepaymentFrequency = strawberry.field(description="How often instalments fall due.")
    day_count: DayCount = strawberry.field(description="How interest is counted.")


@strawberry.input(description="What to preview: a product's terms or explicit ones.")
class SchedulePreviewInput:
    """previewSchedule input."""

    product_code: str | None = strawberry.field(
        default=None, description="Use this active product's terms and bounds."
    )
    terms: ScheduleTermsInput | None = strawberry.field(
        default=None, description="Or these explicit terms (exactly one of the two)."
    )
    amount: Decimal = strawberry.field(description="Principal.")
    term_months: int = strawberry.field(
        description="Term in months; biweekly and weekly loans get 26 or 52 instalments a year "
        "over the same span, rounded up."
    )
    disbursed_on: date | None = strawberry.field(
        default=None, description="Disbursement date; default today (UTC)."
    )
    first_due_date: date | None = strawberry.field(
        default=None,
        description="First due date; default one period after disbursement. Monthly dates keep "
        "its day of month.",
    )


@strawberry.type(description="Result of previewSchedule.")
class SchedulePreviewPayload:
    """previewSchedule payload."""

    schedule: SchedulePreview | None = strawberry.field(
        description="The schedule; null when there are userErrors."
    )
    user_errors: list[UserError] = strawberry.field(description="Why there is no schedule.")


@strawberry.input(description="Pay out an approved loan.")
class DisburseLoanInput:
    """disburseLoan input."""

    loan_id: strawberry.ID = strawberry.field(description="Global id of an APPROVED loan.")
    disbursed_on: date | None = strawberry.field(
        default=None, description="When the money was paid out; default today (UTC), not later."
    )
    first_due_date: date | None = strawberry.field(
        default=None, description="First due date; default one period after disbursement."
    )


@strawberry.type(description="Result of disburseLoan.")
class DisburseLoanPayload:
    """disburseLoan payload."""

    loan: Loan | None = strawberry.field(
        description="The loan, now ACTIVE with its schedule; null when there are userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


@strawberry.input(description="Money received on an active loan.")
class RecordPaymentInput:
    """recordPayment input."""

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
class PaymentPayload:
    """Payment mutation payload."""

    payment: Payment | None = strawberry.field(
        description="The payment with its allocations; null when there are userErrors."
    )
    loan: Loan | None = strawberry.field(description="The loan afterwards.")
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


@strawberry.input(description="Undo a payment recorded by mistake.")
class ReversePaymentInput:
    """reversePayment input."""

    payment_id: strawberry.ID = strawberry.field(description="Global id of the payment.")
    reason: str | None = strawberry.field(default=None, description="Why, up to 2000 characters.")


@strawberry.type
class ServicingPreviewQueries:
    """Root query for schedule previews."""

    @strawberry.field(
        description="The schedule a loan would get, from the same function that books loans."
    )
    async def preview_schedule(
        self,
        info: Info,
        input: Annotated[SchedulePreviewInput, strawberry.argument(description="What to preview.")],
    ) -> SchedulePreviewPayload:
        terms = input.terms
        result = await in_transaction(
            info,
            lambda session: service.preview_schedule(
                session,
                product_code=input.product_code,
                explicit=service.ExplicitTerms(
                    currency=terms.currency,
                    annual_interest_rate=terms.annual_interest_rate,
                    amortization=terms.amortization,
                    frequency=terms.frequency,
                    day_count=terms.day_count,
                )
                if terms
                else None,
                amount=input.amount,
                term_months=input.term_months,
                disbursed_on=input.disbursed_on,
                first_due_date=input.first_due_date,
            ),
        )
        if isinstance(result, list):
            return SchedulePreviewPayload(schedule=None, user_errors=result)
        return SchedulePreviewPayload(
            schedule=SchedulePreview.from_schedule(result), user_errors=[]
        )


def _payment_payload(result: service.PaymentResult | list[UserError]) -> PaymentPayload:
    if isinstance(result, list):
        return PaymentPayload(payment=None, loan=None, user_errors=result)
    return PaymentPayload(
        payment=Payment.from_row(result.payment), loan=Loan.from_row(result.loan), user_errors=[]
    )


@strawberry.type
class ServicingMutations:
    """Mutations on loans and payments."""

    @strawberry.mutation(
        description="Pay out an APPROVED loan: books its schedule and makes it ACTIVE."
    )
    async def disburse_loan(
        self,
        info: Info,
        input: Annotated[DisburseLoanInput, strawberry.argument(description="What to disburse.")],
    ) -> DisburseLoanPayload:
        result = await in_transaction(
            info,
            lambda session: service.disburse_loan(
                session,
                loan_id=key_of(input.loan_id, "Loan", "loanId"),
                disbursed_on=input.disbursed_on,
                first_due_date=input.first_due_date,
            ),
        )
        if isinstance(result, list):
            return DisburseLoanPayload(loan=None, user_errors=result)
        return DisburseLoanPayload(loan=Loan.from_row(result), user_errors=[])

    @strawberry.mutation(
        description="Record money received. It is applied to the oldest instalment first, "
        "interest before principal; the loan is PAID_OFF when nothing is left. OVERPAYMENT when "
        "it exceeds the payoff amount."
    )
    async def record_payment(
        self,
        info: Info,
        input: Annotated[RecordPaymentInput, strawberry.argument(description="The payment.")],
    ) -> PaymentPayload:
        return _payment_payload(
            await in_transaction(
                info,
                lambda session: service.record_payment(
                    session,
                    loan_id=key_of(input.loan_id, "Loan", "loanId"),
                    amount=input.amount,
                    received_on=input.received_on,
                    reference=input.reference,
                    recorded_by=info.context.actor,
                ),
            )
        )

    @strawberry.mutation(
        description="Mark a payment reversed (it is kept) and re-apply the remaining payments. "
        "ALREADY_REVERSED the second time."
    )
    async def reverse_payment(
        self,
        info: Info,
        input: Annotated[ReversePaymentInput, strawberry.argument(description="What to reverse.")],
    ) -> PaymentPayload:
        return _payment_payload(
            await in_transaction(
                info,
                lambda session: service.reverse_payment(
                    session,
                    payment_id=key_of(input.payment_id, "Payment", "paymentId"),
                    reason=input.reason,
                    reversed_by=info.context.actor,
                ),
            )
        )
