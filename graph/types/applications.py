"""Loan applications and their decisions."""

from __future__ import annotations

import enum
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from db import models
from db.reads.plan import Column, Money, PageArgs, ToMany, ToOne
from db.repositories.applications import ApplicationFilter
from graph.compiled.reads import ByStatus, Embedded, Personal, column, private, reads
from graph.context import Info
from graph.enums import OrderDirection, graphql_enum
from graph.errors import ClientError
from graph.loaders import DECISIONS
from graph.relations import money, personal, to_many, to_one
from graph.relay import Node, RowView, paginate
from graph.types.loans import Loan
from graph.types.products import LoanProduct
from lending.errors import DomainError
from lending.money import to_decimal
from lending.privacy import Access, Data, access, describe
from lending.states import ApplicationAction, ApplicationStatus, DecisionOutcome, available_actions

if TYPE_CHECKING:
    from graph.types.applicants import Applicant

NEWEST_DECISION_FIRST = (("decided_at", True), ("id", True))
# Where the currency of an application's amounts is: its product's.
PRODUCT_CURRENCY = (ToOne("loan_products", "product_id"),)


@strawberry.type(description="An application for a loan, and where it stands.")
class LoanApplication(Node, table="loan_applications"):
    key: strawberry.Private[int] = private("id")
    applicant_key: strawberry.Private[int] = private("applicant_id")
    product_key: strawberry.Private[int] = private("product_id")
    reference: str = column("reference", "Human-friendly reference, such as APP-7K3M9Q2XBD.")
    amount_requested: Decimal = money(
        Column("amount_requested"), "Amount asked for.", PRODUCT_CURRENCY
    )
    term_months: int = column("term_months", "Term asked for, in months.")
    purpose: str | None = column("purpose", "What the loan is for, as declared.")
    declared_monthly_income: Decimal | None = personal(
        Money(Column("declared_monthly_income"), PRODUCT_CURRENCY),
        Data.FINANCIAL,
        "Monthly income the applicant declared, in the product's currency.",
    )
    status: ApplicationStatus = column("status", "Current status.")
    version: int = column(
        "version",
        "Incremented on every change; pass as expectedVersion to avoid lost updates.",
    )
    withdrawal_reason: str | None = column(
        "withdrawal_reason",
        "Why the application was withdrawn, if it was and a reason was given.",
    )
    submitted_at: datetime = column("submitted_at", "When the application was submitted.")
    updated_at: datetime = column("updated_at", "When the application last changed.")
    applicant: Annotated[Applicant, strawberry.lazy("graph.types.applicants")] = to_one(
        ToOne("applicants", "applicant_id"), "Who applied."
    )
    product: LoanProduct = to_one(ToOne("loan_products", "product_id"), "The product applied for.")
    decisions: list[Decision] = to_many(
        DECISIONS, "Every decision recorded on the application, oldest first."
    )

    @strawberry.field(
        description="The most recent decision, if any.",
        metadata=reads(replace(DECISIONS, order=NEWEST_DECISION_FIRST, first_only=True)),
    )
    async def latest_decision(self, info: Info) -> Decision | None:
        # The decisions loader, so that `decisions` beside it costs no second statement.
        rows = await info.context.loaders.decisions_by_application.load(self.key)
        return Decision.from_row(rows[-1]) if rows else None

    loan: Loan | None = to_one(
        ToOne("loans", "id", "application_id"),
        "The loan created when the application was approved.",
    )

    @strawberry.field(
        description="What may be done to the application now; "
        "the mutations enforce the same table.",
        metadata=reads(ByStatus("status", ApplicationStatus, available_actions)),
    )
    def available_actions(self) -> list[ApplicationAction]:
        return available_actions(self.status)


FACTORS = ToMany("assessment_factors", "id", "decision_id", (("position", False),))


@strawberry.type(description="What moved an assessment's score, and by how much.")
class AssessmentFactor(RowView, table="assessment_factors"):
    name: str = column("name", "What was weighed, such as debt_to_income.")
    contribution: Decimal = column(
        "contribution", "How much it moved the score, signed (negative: it counted against)."
    )
    detail: str | None = column("detail", "A short explanation, if given.")


@strawberry.type(
    description="The assessment behind a decision: kept with it, never edited (append-only)."
)
class Assessment:
    decision_key: strawberry.Private[int] = private("id")
    score: Decimal = column("score", "The score, 0 to 1000.")
    model: str = column("model", "The model that produced it, written name@version.")
    factors: list[AssessmentFactor] | None = personal(
        FACTORS,
        Data.FINANCIAL,
        "What moved the score, in the order the assessment gave them (at most 50).",
    )
    evidence: list[str] | None = personal(
        Column("evidence"),
        Data.FINANCIAL,
        "References to the documents or data sources relied on (ids, not documents; at most 20).",
    )
    row: strawberry.Private[Any] = None  # the decision's


@strawberry.type(description="An outcome recorded on an application. Decisions are never edited.")
class Decision(Node, table="decisions"):
    key: strawberry.Private[int] = private("id")
    application_key: strawberry.Private[int] = private("application_id")
    assessed_score: strawberry.Private[Decimal | None] = private("score")
    assessed_model: strawberry.Private[str | None] = private("model")
    outcome: DecisionOutcome = column("outcome", "What was decided.")
    reason: str = column("reason", "Why, in the decider's words.")
    decided_by: str = column("decided_by", "Who decided (the caller's name).")
    decided_at: datetime = column("decided_at", "When the decision was recorded.")
    approved_amount: Decimal | None = money(
        Column("approved_amount"),
        "Approved amount, when APPROVED with an amount other than requested.",
        (ToOne("loan_applications", "application_id"), *PRODUCT_CURRENCY),
    )
    annual_interest_rate: Decimal | None = column(
        "annual_interest_rate",
        "Approved annual rate in percent, when APPROVED with a specific rate.",
    )
    term_months: int | None = column(
        "term_months", "Approved term in months, when APPROVED with a term other than requested."
    )
    application: LoanApplication = to_one(
        ToOne("loan_applications", "application_id"), "The application decided."
    )

    @strawberry.field(
        description="The score and evidence the decision was made on; null when none was given. "
        + describe(Data.ASSESSMENT),
        metadata=reads(Personal(Embedded(when="score"), Data.ASSESSMENT)),
    )
    def assessment(self, info: Info) -> Assessment | None:
        if self.assessed_score is None or self.assessed_model is None:
            return None
        if access(info.context.role, Data.ASSESSMENT) is Access.HIDDEN:
            return None
        return Assessment(
            decision_key=self.key,
            score=self.assessed_score,
            model=self.assessed_model,
            row=self.row,
        )


class ApplicationSort(enum.Enum):
    """What an application page can be ordered by."""

    SUBMITTED_AT = "SUBMITTED_AT"
    AMOUNT_REQUESTED = "AMOUNT_REQUESTED"


graphql_enum(
    ApplicationSort,
    "What to order applications by; ties are broken by id, so pages never overlap.",
    {
        ApplicationSort.SUBMITTED_AT: "Submission time.",
        ApplicationSort.AMOUNT_REQUESTED: "Amount requested.",
    },
    name="ApplicationOrderField",
)

SORT_COLUMNS = {
    ApplicationSort.SUBMITTED_AT: models.LoanApplication.submitted_at,
    ApplicationSort.AMOUNT_REQUESTED: models.LoanApplication.amount_requested,
}


@strawberry.input(description="Conditions on applications; all given conditions must hold.")
class ApplicationFilterInput:
    status: list[ApplicationStatus] | None = strawberry.field(
        default=None, description="Any of these statuses."
    )
    product_code: str | None = strawberry.field(default=None, description="This product code.")
    applicant_email: str | None = strawberry.field(
        default=None, description="The applicant's email, any case."
    )
    submitted_from: datetime | None = strawberry.field(
        default=None, description="Submitted at or after this instant."
    )
    submitted_to: datetime | None = strawberry.field(
        default=None, description="Submitted before this instant."
    )
    amount_min: Decimal | None = strawberry.field(
        default=None, description="Amount requested at least this."
    )
    amount_max: Decimal | None = strawberry.field(
        default=None, description="Amount requested at most this."
    )
    decided_by: str | None = strawberry.field(
        default=None, description="The latest decision was made by this caller (exact name)."
    )
    score_min: Decimal | None = strawberry.field(
        default=None, description="The latest decision's assessment scored at least this."
    )
    score_max: Decimal | None = strawberry.field(
        default=None, description="The latest decision's assessment scored at most this."
    )


@strawberry.input(description="How to order applications.")
class ApplicationOrder:
    field: ApplicationSort = strawberry.field(
        default=ApplicationSort.SUBMITTED_AT, description="What to order by."
    )
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.DESC, description="Which way."
    )


# The arguments of every applications connection, described once.
ApplicationFilterArg = Annotated[
    ApplicationFilterInput | None, strawberry.argument(description="Conditions on applications.")
]
ApplicationOrderArg = Annotated[
    ApplicationOrder | None,
    strawberry.argument(description="Ordering; default newest submission first."),
]


def _filter(f: ApplicationFilterInput | None) -> ApplicationFilter:
    if f is None:
        return ApplicationFilter()
    return ApplicationFilter(
        statuses=tuple(f.status) if f.status is not None else None,
        product_code=f.product_code,
        applicant_email=f.applicant_email,
        submitted_from=f.submitted_from,
        submitted_to=f.submitted_to,
        amount_min=_exact(f.amount_min, "amountMin"),
        amount_max=_exact(f.amount_max, "amountMax"),
        decided_by=f.decided_by,
        score_min=_exact(f.score_min, "scoreMin"),
        score_max=_exact(f.score_max, "scoreMax"),
    )


def _exact(value: Any, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        return to_decimal(value, name)
    except DomainError as error:  # misspelt, NaN, or beyond any amount (PostgreSQL would fail)
        raise ClientError(f"`{name}`: {error.message}") from None


def application_page(
    first: int | None = None,
    after: str | None = None,
    filter: ApplicationFilterInput | None = None,
    order_by: ApplicationOrder | None = None,
    last: int | None = None,
    before: str | None = None,
) -> PageArgs:
    """The checked arguments of an applications connection."""
    flt = _filter(filter)
    order = order_by or ApplicationOrder()
    return paginate(
        first,
        after,
        last=last,
        before=before,
        sort=SORT_COLUMNS[order.field],
        name=f"{order.field.value}:{order.direction.value}",
        descending=order.direction is OrderDirection.DESC,
        filter=flt,
    )
