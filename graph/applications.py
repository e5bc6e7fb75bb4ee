"""Loan applications and decisions: the types, their nested fields and the root queries."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from db.read_plan import Domain, PageArgs, ToMany, ToOne
from db.repositories import applications as application_repo
from db.repositories.applications import SORT_COLUMNS, ApplicationFilter, ApplicationSort
from graph.context import Info
from graph.enums import OrderDirection
from graph.errors import ClientError
from graph.ids import key_for
from graph.inputs import refuse_nul
from graph.loaders import Nested
from graph.permissions import READ
from graph.reads import ById, ByStatus, Page, column, order_of, private, reads
from graph.relay import (
    DEFAULT_PAGE_SIZE,
    After,
    Connection,
    First,
    GlobalId,
    Node,
    build_connection,
    decode_cursor,
    page_request,
    row_cursor,
)
from lending.states import ApplicationAction, ApplicationStatus, DecisionOutcome, available_actions

DECISIONS = ToMany("decisions", "id", "application_id", (("decided_at", False), ("id", False)))
NEWEST_DECISION_FIRST = (("decided_at", True), ("id", True))
SORT_BY_COLUMN = {attribute.key: sort for sort, attribute in SORT_COLUMNS.items()}

if TYPE_CHECKING:
    from graph.applicants import Applicant
    from graph.loans import Loan
    from graph.products import LoanProduct


@strawberry.type(description="An application for a loan, and where it stands.")
class LoanApplication(Node):
    """A loan application."""

    key: strawberry.Private[int] = private("id")
    applicant_key: strawberry.Private[int] = private("applicant_id")
    product_key: strawberry.Private[int] = private("product_id")
    reference: str = column("reference", "Human-friendly reference, such as APP-7K3M9Q2XBD.")
    amount_requested: Decimal = column("amount_requested", "Amount asked for.")
    term_months: int = column("term_months", "Term asked for, in months.")
    purpose: str | None = column("purpose", "What the loan is for, as declared.")
    declared_monthly_income: Decimal | None = column(
        "declared_monthly_income",
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

    @strawberry.field(
        description="Who applied.", metadata=reads(ToOne("applicants", "applicant_id"))
    )
    async def applicant(
        self, info: Info
    ) -> Annotated[Applicant, strawberry.lazy("graph.applicants")]:
        from graph.applicants import Applicant

        row = await info.context.loaders.applicant_by_id.load(self.applicant_key)
        assert row is not None
        return Applicant.from_row(row)

    @strawberry.field(
        description="The product applied for.",
        metadata=reads(ToOne("loan_products", "product_id")),
    )
    async def product(
        self, info: Info
    ) -> Annotated[LoanProduct, strawberry.lazy("graph.products")]:
        from graph.products import LoanProduct

        row = await info.context.loaders.product_by_id.load(self.product_key)
        assert row is not None
        return LoanProduct.from_row(row)

    @strawberry.field(
        description="Every decision recorded on the application, oldest first.",
        metadata=reads(DECISIONS),
    )
    async def decisions(self, info: Info) -> list[Decision]:
        rows = await info.context.loaders.decisions_by_application.load(self.key)
        return [Decision.from_row(row) for row in rows]

    @strawberry.field(
        description="The most recent decision, if any.",
        metadata=reads(replace(DECISIONS, order=NEWEST_DECISION_FIRST, first_only=True)),
    )
    async def latest_decision(self, info: Info) -> Decision | None:
        rows = await info.context.loaders.decisions_by_application.load(self.key)
        return Decision.from_row(rows[-1]) if rows else None

    @strawberry.field(
        description="The loan created when the application was approved.",
        metadata=reads(ToOne("loans", "id", "application_id")),
    )
    async def loan(self, info: Info) -> Annotated[Loan, strawberry.lazy("graph.loans")] | None:
        from graph.loans import Loan

        row = await info.context.loaders.loan_by_application.load(self.key)
        return Loan.from_row(row) if row else None

    @strawberry.field(
        description="What may be done to the application now; "
        "the mutations enforce the same table.",
        metadata=reads(ByStatus("status", ApplicationStatus, available_actions)),
    )
    def available_actions(self) -> list[ApplicationAction]:
        return available_actions(self.status)


@strawberry.type(description="An outcome recorded on an application. Decisions are never edited.")
class Decision(Node):
    """A decision."""

    key: strawberry.Private[int] = private("id")
    application_key: strawberry.Private[int] = private("application_id")
    outcome: DecisionOutcome = column("outcome", "What was decided.")
    reason: str = column("reason", "Why, in the decider's words.")
    decided_by: str = column("decided_by", "Who decided (the caller's name).")
    decided_at: datetime = column("decided_at", "When the decision was recorded.")
    approved_amount: Decimal | None = column(
        "approved_amount", "Approved amount, when APPROVED with an amount other than requested."
    )
    annual_interest_rate: Decimal | None = column(
        "annual_interest_rate",
        "Approved annual rate in percent, when APPROVED with a specific rate.",
    )
    term_months: int | None = column(
        "term_months", "Approved term in months, when APPROVED with a term other than requested."
    )

    @strawberry.field(
        description="The application decided.",
        metadata=reads(ToOne("loan_applications", "application_id")),
    )
    async def application(self, info: Info) -> LoanApplication:
        row = await info.context.loaders.application_by_id.load(self.application_key)
        assert row is not None
        return LoanApplication.from_row(row)


@strawberry.input(description="Conditions on applications; all given conditions must hold.")
class ApplicationFilterInput:
    """Application filter."""

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


@strawberry.input(description="How to order applications.")
class ApplicationOrder:
    """Application ordering."""

    field: ApplicationSort = strawberry.field(
        default=ApplicationSort.SUBMITTED_AT, description="What to order by."
    )
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.DESC, description="Which way."
    )


def _filter(f: ApplicationFilterInput | None) -> ApplicationFilter:
    if f is None:
        return ApplicationFilter()
    refuse_nul(f)
    return ApplicationFilter(
        statuses=tuple(f.status) if f.status is not None else None,
        product_code=f.product_code,
        applicant_email=f.applicant_email,
        submitted_from=f.submitted_from,
        submitted_to=f.submitted_to,
        amount_min=_exact(f.amount_min, "amountMin"),
        amount_max=_exact(f.amount_max, "amountMax"),
    )


def _exact(value: Any, name: str) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, Decimal | int) or isinstance(value, bool):
        raise ClientError(f"`{name}` must be a decimal number sent as a string.")
    return Decimal(value)


def application_page(
    first: int | None = DEFAULT_PAGE_SIZE,
    after: str | None = None,
    filter: ApplicationFilterInput | None = None,
    order_by: ApplicationOrder | None = None,
) -> PageArgs:
    """The checked arguments of an applications connection."""
    flt = _filter(filter)
    order = order_by or ApplicationOrder()
    attribute = SORT_COLUMNS[order.field]
    name = f"{order.field.value}:{order.direction.value}"
    value_type = datetime if order.field is ApplicationSort.SUBMITTED_AT else Decimal
    cursor = decode_cursor(after, name, value_type) if after else None
    page = page_request(first, cursor, descending=order.direction is OrderDirection.DESC)
    return PageArgs(flt, page, order_of(attribute, name))


async def nested_applications(
    info: Info, applicant_key: int, args: PageArgs
) -> Connection[LoanApplication]:
    """One applicant's page of applications, batched with its siblings' through a loader."""
    loaders = info.context.loaders
    sort = SORT_BY_COLUMN[args.order.column]
    rows = await loaders.applications_page.load(
        Nested(applicant_key, (args.filter, sort, args.page))
    )
    return build_connection(
        rows,
        args.page,
        to_node=LoanApplication.from_row,
        cursor_of=row_cursor(args.order),
        count=lambda: loaders.applications_count.load(Nested(applicant_key, args.filter)),
    )


application_key = key_for("LoanApplication")


@strawberry.type
class ApplicationQueries:
    """Root fields for applications."""

    @strawberry.field(
        description="One application by global id; null when there is none.",
        permission_classes=[READ],
        metadata=reads(ById("loan_applications", application_key)),
    )
    async def application(
        self,
        info: Info,
        id: GlobalId,
    ) -> LoanApplication | None:
        key = application_key(id)
        row = await info.context.loaders.application_by_id.load(key) if key else None
        return LoanApplication.from_row(row) if row else None

    @strawberry.field(
        description="Applications, newest submission first by default.",
        permission_classes=[READ],
        metadata=reads(Page(Domain.APPLICATIONS, application_page)),
    )
    async def applications(
        self,
        info: Info,
        first: First = DEFAULT_PAGE_SIZE,
        after: After = None,
        filter: Annotated[
            ApplicationFilterInput | None,
            strawberry.argument(description="Conditions on applications."),
        ] = None,
        order_by: Annotated[
            ApplicationOrder | None,
            strawberry.argument(description="Ordering; default newest submission first."),
        ] = None,
    ) -> Connection[LoanApplication]:
        args = application_page(first, after, filter, order_by)
        sort = SORT_BY_COLUMN[args.order.column]
        db = info.context.db
        rows = await db.run(application_repo.page_applications, args.filter, sort, args.page)
        return build_connection(
            rows,
            args.page,
            to_node=LoanApplication.from_row,
            cursor_of=row_cursor(args.order),
            count=lambda: db.run(application_repo.count_applications, args.filter),
        )
