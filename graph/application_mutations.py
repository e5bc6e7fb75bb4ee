"""Mutations on applications: apply, decide, withdraw. Each parses, calls one service, maps."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from graph.applications import Decision, LoanApplication
from graph.context import Info
from graph.errors import UserError
from graph.ids import key_of
from graph.loans import Loan
from graph.mutation import IdempotentInput, Replayable, VersionedInput, run_mutation
from graph.permissions import APPLY, DECIDE, WITHDRAW
from lending.audit import Caller
from lending.services import applications as service


@strawberry.input(description="Who is applying.")
class ApplicantInput:
    """Applicant details."""

    full_name: str = strawberry.field(description="Full name, 1 to 200 characters.")
    email: str = strawberry.field(
        description="Email address; an existing applicant with this email (any case) is reused."
    )
    phone: str | None = strawberry.field(default=None, description="Phone number, optional.")


@strawberry.input(description="An application for a loan.")
class ApplyForLoanInput(IdempotentInput):
    """applyForLoan input."""

    applicant: ApplicantInput = strawberry.field(description="Who is applying.")
    product_code: str = strawberry.field(description="Code of an active loan product.")
    amount: Decimal = strawberry.field(
        description="Amount asked for, within the product's bounds, in its currency."
    )
    term_months: int = strawberry.field(description="Term in months, within the product's bounds.")
    purpose: str | None = strawberry.field(
        default=None, description="What the loan is for, up to 500 characters."
    )
    declared_monthly_income: Decimal | None = strawberry.field(
        default=None,
        description="Monthly income the applicant declares, in the product's currency.",
    )


@strawberry.type(description="Result of applyForLoan.")
class ApplyForLoanPayload(Replayable):
    """applyForLoan payload."""

    application: LoanApplication | None = strawberry.field(
        description="The submitted application; null when there are userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


@strawberry.input(description="A decision on an application.")
class DecideApplicationInput(VersionedInput):
    """decideApplication input."""

    application_id: strawberry.ID = strawberry.field(description="Global id of the application.")
    outcome: str = strawberry.field(
        description=(
            "APPROVED, REJECTED or REFERRED (the DecisionOutcome values). A string, so that an "
            "unknown value is reported as a userError rather than failing the whole request."
        )
    )
    reason: str = strawberry.field(description="Why, 1 to 2000 characters.")
    approved_amount: Decimal | None = strawberry.field(
        default=None,
        description="APPROVED only: amount approved, within the product's bounds; "
        "default the amount requested.",
    )
    annual_interest_rate: Decimal | None = strawberry.field(
        default=None,
        description="APPROVED only: annual rate in percent; default the product's rate.",
    )
    term_months: int | None = strawberry.field(
        default=None,
        description="APPROVED only: term in months, within the product's bounds; "
        "default the term requested.",
    )


@strawberry.type(description="Result of decideApplication.")
class DecideApplicationPayload(Replayable):
    """decideApplication payload."""

    application: LoanApplication | None = strawberry.field(
        description="The application after the decision; null when there are userErrors."
    )
    decision: Decision | None = strawberry.field(description="The decision recorded.")
    loan: Loan | None = strawberry.field(description="The loan created, when APPROVED.")
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


@strawberry.input(description="A request to withdraw an open application.")
class WithdrawApplicationInput(VersionedInput):
    """withdrawApplication input."""

    application_id: strawberry.ID = strawberry.field(description="Global id of the application.")
    reason: str | None = strawberry.field(
        default=None, description="Why, up to 2000 characters; optional."
    )


@strawberry.type(description="Result of withdrawApplication.")
class WithdrawApplicationPayload(Replayable):
    """withdrawApplication payload."""

    application: LoanApplication | None = strawberry.field(
        description="The withdrawn application; null when there are userErrors."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


@strawberry.type
class ApplicationMutations:
    """Mutations on applications."""

    @strawberry.mutation(
        description="Submit an application. DUPLICATE_OPEN_APPLICATION while the applicant "
        "has another one SUBMITTED or IN_REVIEW.",
        permission_classes=[APPLY],
    )
    async def apply_for_loan(
        self,
        info: Info,
        input: Annotated[ApplyForLoanInput, strawberry.argument(description="The application.")],
    ) -> ApplyForLoanPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, object]:
            application = await service.apply_for_loan(
                session,
                caller,
                full_name=input.applicant.full_name,
                email=input.applicant.email,
                phone=input.applicant.phone,
                product_code=input.product_code,
                amount=input.amount,
                term_months=input.term_months,
                purpose=input.purpose,
                declared_monthly_income=input.declared_monthly_income,
            )
            return {"application": application}

        outcome = await run_mutation(info, "applyForLoan", input, work)
        if isinstance(outcome, list):
            return ApplyForLoanPayload(application=None, user_errors=outcome, replayed=False)
        return ApplyForLoanPayload(
            application=await outcome.view(info, "application"),
            user_errors=[],
            replayed=outcome.replayed,
        )

    @strawberry.mutation(
        description="Record a decision. APPROVED creates the loan; REFERRED moves the "
        "application to IN_REVIEW. INVALID_TRANSITION on a final application.",
        permission_classes=[DECIDE],
    )
    async def decide_application(
        self,
        info: Info,
        input: Annotated[DecideApplicationInput, strawberry.argument(description="The decision.")],
    ) -> DecideApplicationPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, object]:
            decided = await service.decide_application(
                session,
                caller,
                application_id=key_of(input.application_id, "LoanApplication", "applicationId"),
                outcome=input.outcome,
                reason=input.reason,
                approved_amount=input.approved_amount,
                annual_interest_rate=input.annual_interest_rate,
                term_months=input.term_months,
                expected_version=input.expected_version,
            )
            return {
                "application": decided.application,
                "decision": decided.decision,
                "loan": decided.loan,
            }

        outcome = await run_mutation(info, "decideApplication", input, work)
        if isinstance(outcome, list):
            return DecideApplicationPayload(
                application=None, decision=None, loan=None, user_errors=outcome, replayed=False
            )
        return DecideApplicationPayload(
            application=await outcome.view(info, "application"),
            decision=await outcome.view(info, "decision"),
            loan=await outcome.view(info, "loan"),
            user_errors=[],
            replayed=outcome.replayed,
        )

    @strawberry.mutation(
        description="Withdraw an application that is SUBMITTED or IN_REVIEW.",
        permission_classes=[WITHDRAW],
    )
    async def withdraw_application(
        self,
        info: Info,
        input: Annotated[
            WithdrawApplicationInput, strawberry.argument(description="What to withdraw.")
        ],
    ) -> WithdrawApplicationPayload:
        async def work(session: AsyncSession, caller: Caller) -> dict[str, object]:
            application = await service.withdraw_application(
                session,
                caller,
                application_id=key_of(input.application_id, "LoanApplication", "applicationId"),
                reason=input.reason,
                expected_version=input.expected_version,
            )
            return {"application": application}

        outcome = await run_mutation(info, "withdrawApplication", input, work)
        if isinstance(outcome, list):
            return WithdrawApplicationPayload(application=None, user_errors=outcome, replayed=False)
        return WithdrawApplicationPayload(
            application=await outcome.view(info, "application"),
            user_errors=[],
            replayed=outcome.replayed,
        )
