"""Servicing operations: preview a schedule, disburse a loan, record and reverse payments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from graph.context import Info
from graph.errors import UserError, user_errors
from graph.ids import key_of
from graph.loans import Loan
from graph.mutation import IdempotentInput, Outcome, Replayable, VersionedInput, run_mutation
from graph.permissions import DISBURSE, READ, RECORD_PAYMENT, REVERSE_PAYMENT
from graph.servicing import Payment, SchedulePreview
from lending.audit import Caller
from lending.errors import DomainError, DomainErrors
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
class DisburseLoanInput(VersionedInput):
    """disburseLoan input."""

    loan_id: strawberry.ID = strawberry.field(description="Global id of an APPROVED loan.")
    disbursed_on: date | None = strawberry.field(
        default=None, description="When the money was paid out; default today (UTC), not later."
    )
    first_due_date: date | None = strawberry.field(
        default=None, description="First due date; default one period after disbursement."
    )


@strawberry.type(description="Result of disburseLoan.")
class DisburseLoanPayload(Replayable):
    """disburseLoan payload."""

    loan: Loan | None = strawberry.field(
        description="The loan, now ACTIVE with its schedule; null when there are userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


@strawberry.input(description="Money received on an active loan.")
class RecordPaymentInput(IdempotentInput):
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
class PaymentPayload(Replayable):
    """Payment mutation payload."""

    payment: Payment | None = strawberry.field(
        description="The payment with its allocations; null when there are userErrors."
    )
    loan: Loan | None = strawberry.field(description="The loan afterwards.")
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


@strawberry.input(description="Undo a payment recorded by mistake.")
class ReversePaymentInput(IdempotentInput):
    """reversePayment input."""

    payment_id: strawberry.ID = strawberry.field(description="Global id of the payment.")
    reason: str | None = strawberry.field(default=None, description="Why, up to 2000 characters.")


@strawberry.type
class ServicingPreviewQueries:
    """Root query for schedule previews."""

    @strawberry.field(
        description="The schedule a loan would get, from the same function that books loans.",
        permission_classes=[READ],
    )
    async def preview_schedule(
        self,
        info: Info,
        input: Annotated[SchedulePreviewInput, strawberry.argument(description="What to preview.")],
    ) -> SchedulePreviewPayload:
        terms = input.terms
        explicit = (
            service.ExplicitTerms(
                currency=terms.currency,
                annual_interest_rate=terms.annual_interest_rate,
                amortization=terms.amortization,
                frequency=terms.frequency,
                day_count=terms.day_count,
            )
            if terms
            else None
        )
        try:
            schedule = await info.context.db.run(
                service.preview_schedule,
                product_code=input.product_code,
                explicit=explicit,
                amount=input.amount,
                term_months=input.term_months,
                disbursed_on=input.disbursed_on,
                first_due_date=input.first_due_date,
            )
        except (DomainError, DomainErrors) as exc:
            return SchedulePreviewPayload(schedule=None, user_errors=user_errors(exc))
        return SchedulePreviewPayload(
            schedule=SchedulePreview.from_schedule(schedule), user_errors=[]
        )


def _prime_schedule(info: Info, disbursed: service.Disbursed) -> None:
    """Seed the loaders with the schedule just booked, so the payload reads none of it back."""
    loaders = info.context.loaders
    loaders.prime(disbursed.installments)
    loaders.installments_by_loan.prime(disbursed.loan.id, list(disbursed.installments))
    # A loan is disbursed before any payment can be recorded on it: nothing is allocated yet.
    loaders.allocations_by_loan.prime(disbursed.loan.id, [])


async def _payment_payload(info: Info, outcome: Outcome | list[UserError]) -> PaymentPayload:
    if isinstance(outcome, list):
        return PaymentPayload(payment=None, loan=None, user_errors=outcome, replayed=False)
    return PaymentPayload(
        payment=await outcome.view(info, "payment"),
        loan=await outcome.view(info, "loan"),
        user_errors=[],
        replayed=outcome.replayed,
    )


@strawberry.type
class ServicingMutations:
    """Mutations on loans and payments."""

    @strawberry.mutation(
        description="Pay out an APPROVED loan: books its schedule and makes it ACTIVE.",
        permission_classes=[DISBURSE],
    )
    async def disburse_loan(
        self,
        info: Info,
        input: Annotated[DisburseLoanInput, strawberry.argument(description="What to disburse.")],
    ) -> DisburseLoanPayload:
        booked: list[service.Disbursed] = []

        async def work(session: AsyncSession, caller: Caller) -> dict[str, object]:
            disbursed = await service.disburse_loan(
                session,
                caller,
                loan_id=key_of(input.loan_id, "Loan", "loanId"),
                disbursed_on=input.disbursed_on,
                first_due_date=input.first_due_date,
                expected_version=input.expected_version,
            )
            booked.append(disbursed)
            return {"loan": disbursed.loan}

        outcome = await run_mutation(info, "disburseLoan", input, work)
        if isinstance(outcome, list):
            return DisburseLoanPayload(loan=None, user_errors=outcome, replayed=False)
        if booked and not outcome.replayed:
            _prime_schedule(info, booked[0])
        return DisburseLoanPayload(
            loan=await outcome.view(info, "loan"), user_errors=[], replayed=outcome.replayed
        )

    @strawberry.mutation(
        description="Record money received. It is applied to the oldest instalment first, "
        "interest before principal; the loan is PAID_OFF when nothing is left. OVERPAYMENT when "
        "it exceeds the payoff amount.",
        permission_classes=[RECORD_PAYMENT],
    )
    async def record_payment(
        self,
        info: Info,
        input: Annotated[RecordPaymentInput, strawberry.argument(description="The payment.")],
    ) -> PaymentPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, object]:
            result = await service.record_payment(
                session,
                caller,
                loan_id=key_of(input.loan_id, "Loan", "loanId"),
                amount=input.amount,
                received_on=input.received_on,
                reference=input.reference,
            )
            return {"payment": result.payment, "loan": result.loan}

        return await _payment_payload(info, await run_mutation(info, "recordPayment", input, work))

    @strawberry.mutation(
        description="Mark a payment reversed (it is kept) and re-apply the remaining payments. "
        "ALREADY_REVERSED the second time.",
        permission_classes=[REVERSE_PAYMENT],
    )
    async def reverse_payment(
        self,
        info: Info,
        input: Annotated[ReversePaymentInput, strawberry.argument(description="What to reverse.")],
    ) -> PaymentPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, object]:
            result = await service.reverse_payment(
                session,
                caller,
                payment_id=key_of(input.payment_id, "Payment", "paymentId"),
                reason=input.reason,
            )
            return {"payment": result.payment, "loan": result.loan}

        return await _payment_payload(info, await run_mutation(info, "reversePayment", input, work))
