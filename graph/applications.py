"""Loan applications and decisions: the types, their nested fields and the root queries."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from db import models
from db.repositories import applications as application_repo
from db.repositories.applications import SORT_COLUMNS, ApplicationFilter, ApplicationSort
from graph.context import Info
from graph.enums import OrderDirection
from graph.errors import ClientError
from graph.ids import parse_global_id, to_global_id
from graph.inputs import refuse_nul
from graph.loaders import Nested
from graph.permissions import READ
from graph.relay import (
    DEFAULT_PAGE_SIZE,
    After,
    Connection,
    First,
    GlobalId,
    Node,
    build_connection,
    decode_cursor,
    encode_cursor,
    page_request,
)
from lending.states import ApplicationAction, ApplicationStatus, DecisionOutcome, available_actions

if TYPE_CHECKING:
    from graph.applicants import Applicant
    from graph.loans import Loan
    from graph.products import LoanProduct


@strawberry.type(description="An application for a loan, and where it stands.")
class LoanApplication(Node):
    """A loan application."""

    key: strawberry.Private[int]
    applicant_key: strawberry.Private[int]
    product_key: strawberry.Private[int]
    reference: str = strawberry.field(
        description="Human-friendly reference, such as APP-7K3M9Q2XBD."
    )
    amount_requested: Decimal = strawberry.field(description="Amount asked for.")
    term_months: int = strawberry.field(description="Term asked for, in months.")
    purpose: str | None = strawberry.field(description="What the loan is for, as declared.")
    declared_monthly_income: Decimal | None = strawberry.field(
        description="Monthly income the applicant declared, in the product's currency."
    )
    status: ApplicationStatus = strawberry.field(description="Current status.")
    version: int = strawberry.field(
        description="Incremented on every change; pass as expectedVersion to avoid lost updates."
    )
    withdrawal_reason: str | None = strawberry.field(
        description="Why the application was withdrawn, if it was and a reason was given."
    )
    submitted_at: datetime = strawberry.field(description="When the application was submitted.")
    updated_at: datetime = strawberry.field(description="When the application last changed.")

    @classmethod
    def from_row(cls, row: models.LoanApplication) -> LoanApplication:
        """The GraphQL view of an application row."""
        return cls(
            id=strawberry.ID(to_global_id("LoanApplication", row.id)),
            key=row.id,
            applicant_key=row.applicant_id,
            product_key=row.product_id,
            reference=row.reference,
            amount_requested=row.amount_requested,
            term_months=row.term_months,
            purpose=row.purpose,
            declared_monthly_income=row.declared_monthly_income,
            status=row.status,
            version=row.version,
            withdrawal_reason=row.withdrawal_reason,
            submitted_at=row.submitted_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="Who applied.")
    async def applicant(
        self, info: Info
    ) -> Annotated[Applicant, strawberry.lazy("graph.applicants")]:
        from graph.applicants import Applicant

        row = await info.context.loaders.applicant_by_id.load(self.applicant_key)
        assert row is not None
        return Applicant.from_row(row)

    @strawberry.field(description="The product applied for.")
    async def product(
        self, info: Info
    ) -> Annotated[LoanProduct, strawberry.lazy("graph.products")]:
        from graph.products import LoanProduct

        row = await info.context.loaders.product_by_id.load(self.product_key)
        assert row is not None
        return LoanProduct.from_row(row)

    @strawberry.field(description="Every decision recorded on the application, oldest first.")
    async def decisions(self, info: Info) -> list[Decision]:
        rows = await info.context.loaders.decisions_by_application.load(self.key)
        return [Decision.from_row(row) for row in rows]

    @strawberry.field(description="The most recent decision, if any.")
    async def latest_decision(self, info: Info) -> Decision | None:
        rows = await info.context.loaders.decisions_by_application.load(self.key)
        return Decision.from_row(rows[-1]) if rows else None

    @strawberry.field(description="The loan created when the application was approved.")
    async def loan(self, info: Info) -> Annotated[Loan, strawberry.lazy("graph.loans")] | None:
        from graph.loans import Loan

        row = await info.context.loaders.loan_by_application.load(self.key)
        return Loan.from_row(row) if row else None

    @strawberry.field(
        description="What may be done to the application now; the mutations enforce the same table."
    )
    def available_actions(self) -> list[ApplicationAction]:
        return available_actions(self.status)


@strawberry.type(description="An outcome recorded on an application. Decisions are never edited.")
class Decision(Node):
    """A decision."""

    key: strawberry.Private[int]
    application_key: strawberry.Private[int]
    outcome: DecisionOutcome = strawberry.field(description="What was decided.")
    reason: str = strawberry.field(description="Why, in the decider's words.")
    decided_by: str = strawberry.field(description="Who decided (the caller's name).")
    decided_at: datetime = strawberry.field(description="When the decision was recorded.")
    approved_amount: Decimal | None = strawberry.field(
        description="Approved amount, when APPROVED with an amount other than requested."
    )
    annual_interest_rate: Decimal | None = strawberry.field(
        description="Approved annual rate in percent, when APPROVED with a specific rate."
    )
    term_months: int | None = strawberry.field(
        description="Approved term in months, when APPROVED with a term other than requested."
    )

    @classmethod
    def from_row(cls, row: models.Decision) -> Decision:
        """The GraphQL view of a decision row."""
        return cls(
            id=strawberry.ID(to_global_id("Decision", row.id)),
            key=row.id,
            application_key=row.application_id,
            outcome=row.outcome,
            reason=row.reason,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            approved_amount=row.approved_amount,
            annual_interest_rate=row.annual_interest_rate,
            term_months=row.term_months,
        )

    @strawberry.field(description="The application decided.")
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


def _ordering(order: ApplicationOrder | None) -> tuple[ApplicationSort, bool, str, type]:
    order = order or ApplicationOrder()
    value_type = datetime if order.field is ApplicationSort.SUBMITTED_AT else Decimal
    name = f"{order.field.value}:{order.direction.value}"
    return order.field, order.direction is OrderDirection.DESC, name, value_type


def _cursor_of(sort: ApplicationSort, name: str) -> Any:
    column = SORT_COLUMNS[sort].key
    return lambda row: encode_cursor(name, getattr(row, column), row.id)


async def nested_applications(
    info: Info,
    applicant_key: int,
    first: int | None,
    after: str | None,
    filter_input: ApplicationFilterInput | None,
    order: ApplicationOrder | None,
) -> Connection[LoanApplication]:
    """One applicant's page of applications, batched with its siblings' through a loader."""
    flt = _filter(filter_input)
    sort, descending, name, value_type = _ordering(order)
    cursor = decode_cursor(after, name, value_type) if after else None
    page = page_request(first, cursor, descending=descending)
    loaders = info.context.loaders
    rows = await loaders.applications_page.load(Nested(applicant_key, (flt, sort, page)))
    return build_connection(
        rows,
        page,
        to_node=LoanApplication.from_row,
        cursor_of=_cursor_of(sort, name),
        count=lambda: loaders.applications_count.load(Nested(applicant_key, flt)),
    )


@strawberry.type
class ApplicationQueries:
    """Root fields for applications."""

    @strawberry.field(
        description="One application by global id; null when there is none.",
        permission_classes=[READ],
    )
    async def application(
        self,
        info: Info,
        id: GlobalId,
    ) -> LoanApplication | None:
        parsed = parse_global_id(id)
        if parsed is None or parsed[0] != "LoanApplication":
            return None
        row = await info.context.loaders.application_by_id.load(parsed[1])
        return LoanApplication.from_row(row) if row else None

    @strawberry.field(
        description="Applications, newest submission first by default.", permission_classes=[READ]
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
        flt = _filter(filter)
        sort, descending, name, value_type = _ordering(order_by)
        cursor = decode_cursor(after, name, value_type) if after else None
        page = page_request(first, cursor, descending=descending)
        db = info.context.db
        rows = await db.run(application_repo.page_applications, flt, sort, page)
        return build_connection(
            rows,
            page,
            to_node=LoanApplication.from_row,
            cursor_of=_cursor_of(sort, name),
            count=lambda: db.run(application_repo.count_applications, flt),
        )
