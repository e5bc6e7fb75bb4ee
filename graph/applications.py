"""Root fields for applications: the queries, and the mutations apply, decide and withdraw."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db.reads.plan import Domain
from graph.compiled.reads import AS_NODE, Page, reads
from graph.context import Info
from graph.ids import key_of
from graph.mutation import IdempotentInput, Payload, VersionedInput, run_mutation, written
from graph.permissions import APPLY, DECIDE, READ, WITHDRAW
from graph.relations import lookup, page_of
from graph.relay import After, Before, Connection, First, Last
from graph.types.applications import (
    ApplicationFilterArg,
    ApplicationOrderArg,
    Decision,
    LoanApplication,
    application_page,
)
from graph.types.loans import Loan
from lending.assessment import RawFactor
from lending.audit import Caller
from lending.services import applications as service

APPLICATIONS = Page(Domain.APPLICATIONS, application_page)


@strawberry.type
class ApplicationQueries:
    application: LoanApplication | None = lookup(
        READ, LoanApplication, "One application by global id; null when there is none."
    )

    @READ.field("Applications, newest submission first by default.", metadata=reads(APPLICATIONS))
    async def applications(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: ApplicationFilterArg = None,
        order_by: ApplicationOrderArg = None,
    ) -> Connection[LoanApplication]:
        args = application_page(first, after, filter, order_by, last=last, before=before)
        return await page_of(info, APPLICATIONS, args)


@strawberry.input(description="Who is applying.")
class ApplicantInput:
    full_name: str = strawberry.field(description="Full name, 1 to 200 characters.")
    email: str = strawberry.field(
        description="Email address; an existing applicant with this email (any case) is reused."
    )
    phone: str | None = strawberry.field(default=None, description="Phone number, optional.")


@strawberry.input(description="An application for a loan.")
class ApplyForLoanInput(IdempotentInput):
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
class ApplyForLoanPayload(Payload):
    application: LoanApplication | None = strawberry.field(
        metadata=reads(AS_NODE),
        default=None,
        description="The submitted application; null when there are userErrors.",
    )


@strawberry.input(description="What moved an assessment's score.")
class AssessmentFactorInput:
    name: str = strawberry.field(description="What was weighed, 1 to 100 characters.")
    contribution: Decimal = strawberry.field(
        description="How much it moved the score, signed, at most 4 decimals."
    )
    detail: str | None = strawberry.field(
        default=None, description="A short explanation, up to 500 characters."
    )


@strawberry.input(description="The assessment a decision is made on; stored with it.")
class AssessmentInput:
    score: Decimal = strawberry.field(description="0 to 1000, at most 4 decimals.")
    model: str = strawberry.field(
        description="The model that produced it, name@version (1 to 100 characters)."
    )
    factors: list[AssessmentFactorInput] = strawberry.field(
        default_factory=list, description="What moved the score, at most 50."
    )
    evidence: list[str] = strawberry.field(
        default_factory=list,
        description="References (document or data-source ids, not documents), at most 20, "
        "each 1 to 200 characters.",
    )


@strawberry.input(description="A decision on an application.")
class DecideApplicationInput(VersionedInput):
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
    assessment: AssessmentInput | None = strawberry.field(
        default=None,
        description="The score and evidence behind the decision. Required when the product "
        "says so, and for an approval when it sets a referBelowScore (POLICY_VIOLATION).",
    )


@strawberry.type(description="Result of decideApplication.")
class DecideApplicationPayload(Payload):
    application: LoanApplication | None = strawberry.field(
        metadata=reads(AS_NODE),
        default=None,
        description="The application after the decision; null when there are userErrors.",
    )
    decision: Decision | None = strawberry.field(
        metadata=reads(AS_NODE), default=None, description="The decision recorded."
    )
    loan: Loan | None = strawberry.field(
        metadata=reads(AS_NODE), default=None, description="The loan created, when APPROVED."
    )


@strawberry.input(description="A request to withdraw an open application.")
class WithdrawApplicationInput(VersionedInput):
    application_id: strawberry.ID = strawberry.field(description="Global id of the application.")
    reason: str | None = strawberry.field(
        default=None, description="Why, up to 2000 characters; optional."
    )


@strawberry.type(description="Result of withdrawApplication.")
class WithdrawApplicationPayload(Payload):
    application: LoanApplication | None = strawberry.field(
        metadata=reads(AS_NODE),
        default=None,
        description="The withdrawn application; null when there are userErrors.",
    )


def _assessment(given: AssessmentInput | None) -> service.AssessmentIn | None:
    if given is None:
        return None
    return service.AssessmentIn(
        score=given.score,
        model=given.model,
        factors=[RawFactor(f.name, f.contribution, f.detail) for f in given.factors],
        evidence=list(given.evidence),
    )


@strawberry.type
class ApplicationMutations:
    @APPLY.mutation(
        "Submit an application. DUPLICATE_OPEN_APPLICATION while the applicant has another one "
        "SUBMITTED or IN_REVIEW."
    )
    async def apply_for_loan(
        self,
        info: Info,
        input: Annotated[ApplyForLoanInput, strawberry.argument(description="The application.")],
    ) -> ApplyForLoanPayload:
        async def work(session: AsyncSession, caller: Caller) -> ApplyForLoanPayload:
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
            return ApplyForLoanPayload(application=written(LoanApplication, application))

        return await run_mutation(info, ApplyForLoanPayload, input, work)

    @DECIDE.mutation(
        "Record a decision. APPROVED creates the loan; REFERRED moves the application to "
        "IN_REVIEW. INVALID_TRANSITION on a final application."
    )
    async def decide_application(
        self,
        info: Info,
        input: Annotated[DecideApplicationInput, strawberry.argument(description="The decision.")],
    ) -> DecideApplicationPayload:
        async def work(session: AsyncSession, caller: Caller) -> DecideApplicationPayload:
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
                assessment=_assessment(input.assessment),
            )
            return DecideApplicationPayload(
                application=written(LoanApplication, decided.application),
                decision=written(Decision, decided.decision),
                loan=written(Loan, decided.loan),
            )

        return await run_mutation(info, DecideApplicationPayload, input, work)

    @WITHDRAW.mutation("Withdraw an application that is SUBMITTED or IN_REVIEW.")
    async def withdraw_application(
        self,
        info: Info,
        input: Annotated[
            WithdrawApplicationInput, strawberry.argument(description="What to withdraw.")
        ],
    ) -> WithdrawApplicationPayload:
        async def work(session: AsyncSession, caller: Caller) -> WithdrawApplicationPayload:
            application = await service.withdraw_application(
                session,
                caller,
                application_id=key_of(input.application_id, "LoanApplication", "applicationId"),
                reason=input.reason,
                expected_version=input.expected_version,
            )
            return WithdrawApplicationPayload(application=written(LoanApplication, application))

        return await run_mutation(info, WithdrawApplicationPayload, input, work)
