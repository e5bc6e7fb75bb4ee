"""Loans: the type and its root query."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from db.read_plan import Computation, Domain, PageArgs, ToOne
from db.repositories import loans as loan_repo
from db.repositories.loans import LoanFilter
from graph.context import Info
from graph.ids import key_for
from graph.loaders import Nested
from graph.permissions import READ
from graph.reads import (
    ById,
    ByStatus,
    Compute,
    Embedded,
    Page,
    column,
    order_of,
    private,
    reads,
)
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
from graph.servicing import (
    AS_OF,
    Delinquency,
    Payment,
    RepaymentSchedule,
    assessed_on,
    loan_balances,
    loan_delinquency,
    payment_page,
)
from lending import clock
from lending.delinquency import BUCKET_BOUNDS, DelinquencyBucket
from lending.repayment import left_to_pay
from lending.states import LoanAction, LoanStatus, available_loan_actions
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

if TYPE_CHECKING:
    from graph.applicants import Applicant
    from graph.applications import LoanApplication


@strawberry.type(description="A loan created by an approved application, with its terms.")
class Loan(Node):
    """A loan."""

    key: strawberry.Private[int] = private("id")
    application_key: strawberry.Private[int] = private("application_id")
    applicant_key: strawberry.Private[int] = private("applicant_id")
    reference: str = column("reference", "Human-friendly reference, such as LN-4F7P2K9QZM.")
    principal: Decimal = column("principal", "Amount lent.")
    currency: str = column("currency", "ISO 4217 currency code of all amounts.")
    annual_interest_rate: Decimal = column(
        "annual_interest_rate", 'Nominal annual interest rate in percent, such as "9.99".'
    )
    term_months: int = column("term_months", "Term in months.")
    amortization: AmortizationMethod = column("amortization", "How instalments are split.")
    frequency: RepaymentFrequency = column("frequency", "How often instalments fall due.")
    day_count: DayCount = column("day_count", "How interest is counted.")
    status: LoanStatus = column("status", "Current status.")
    version: int = column(
        "version",
        "Incremented on every change; pass as expectedVersion to avoid lost updates.",
    )
    approved_at: datetime = column("approved_at", "When the approving decision was made.")
    disbursed_on: date | None = column("disbursed_on", "When the money was paid out.")
    maturity_date: date | None = column("maturity_date", "Due date of the last instalment.")

    @strawberry.field(
        description="The application the loan was approved on.",
        metadata=reads(ToOne("loan_applications", "application_id")),
    )
    async def application(
        self, info: Info
    ) -> Annotated[LoanApplication, strawberry.lazy("graph.applications")]:
        from graph.applications import LoanApplication

        row = await info.context.loaders.application_by_id.load(self.application_key)
        assert row is not None
        return LoanApplication.from_row(row)

    @strawberry.field(
        description="The booked repayment schedule; null until the loan is disbursed.",
        metadata=reads(Embedded(when="disbursed_on")),
    )
    async def schedule(self, info: Info) -> RepaymentSchedule | None:
        if self.disbursed_on is None:
            return None
        rows = await info.context.loaders.installments_by_loan.load(self.key)
        return RepaymentSchedule.from_rows(rows)

    @strawberry.field(
        description="Payments on the loan, reversed ones included, oldest received first.",
        metadata=reads(Page(Domain.PAYMENTS, payment_page, "id", "loan_id")),
    )
    async def payments(
        self,
        info: Info,
        first: First = DEFAULT_PAGE_SIZE,
        after: After = None,
    ) -> Connection[Payment]:
        args = payment_page(first, after)
        loaders = info.context.loaders
        rows = await loaders.payments_page.load(Nested(self.key, args.page))
        return build_connection(
            rows,
            args.page,
            to_node=Payment.from_row,
            cursor_of=row_cursor(args.order),
            count=lambda: loaders.payments_count.load(Nested(self.key, None)),
        )

    @strawberry.field(
        description="Principal not yet repaid; null until disbursed.",
        metadata=reads(Compute(Computation.OUTSTANDING_PRINCIPAL)),
    )
    async def outstanding_principal(self, info: Info) -> Decimal | None:
        if self.disbursed_on is None:
            return None
        balances = await loan_balances(info, self.key, None)
        return sum((b.principal_due - b.principal_paid for b in balances.values()), Decimal(0))

    @strawberry.field(
        description="Everything left to pay on a date (null until disbursed): what the schedule "
        "asks for less payments received by then. Prepayments reduce future instalments in "
        "order; in this version there is no re-amortization and no rebate of future interest.",
        metadata=reads(Compute(Computation.PAYOFF, bind=assessed_on)),
    )
    async def payoff_amount(
        self,
        info: Info,
        as_of: Annotated[date | None, strawberry.argument(description=AS_OF)] = None,
    ) -> Decimal | None:
        if self.disbursed_on is None:
            return None
        balances = await loan_balances(info, self.key, assessed_on(as_of))
        return left_to_pay(balances.values())

    @strawberry.field(
        description="How far behind the loan is on a date.",
        metadata=reads(Embedded(bind=assessed_on)),
    )
    async def delinquency(
        self,
        info: Info,
        as_of: Annotated[date | None, strawberry.argument(description=AS_OF)] = None,
    ) -> Delinquency:
        return await loan_delinquency(info, self.key, self.currency, assessed_on(as_of))

    @strawberry.field(
        description="What may be done to the loan now; the mutations enforce the same table.",
        metadata=reads(ByStatus("status", LoanStatus, available_loan_actions)),
    )
    def available_actions(self) -> list[LoanAction]:
        return available_loan_actions(self.status)

    @strawberry.field(
        description="The borrower.", metadata=reads(ToOne("applicants", "applicant_id"))
    )
    async def applicant(
        self, info: Info
    ) -> Annotated[Applicant, strawberry.lazy("graph.applicants")]:
        from graph.applicants import Applicant

        row = await info.context.loaders.applicant_by_id.load(self.applicant_key)
        assert row is not None
        return Applicant.from_row(row)


@strawberry.input(description="Conditions on loans; all given conditions must hold.")
class LoanFilterInput:
    """Loan filter."""

    status: list[LoanStatus] | None = strawberry.field(
        default=None, description="Any of these statuses."
    )
    delinquency_bucket: list[DelinquencyBucket] | None = strawberry.field(
        default=None, description="Active loans in any of these delinquency buckets on `asOf`."
    )
    as_of: date | None = strawberry.field(
        default=None, description="The date delinquency is assessed on; default today (UTC)."
    )


def loan_filter(f: LoanFilterInput | None) -> LoanFilter:
    """The repository filter of a GraphQL loan filter."""
    if f is None:
        return LoanFilter()
    return LoanFilter(
        statuses=tuple(f.status) if f.status is not None else None,
        days_past_due=tuple(BUCKET_BOUNDS[b] for b in f.delinquency_bucket)
        if f.delinquency_bucket is not None
        else None,
        as_of=(f.as_of or clock.today()) if f.delinquency_bucket is not None else None,
    )


LOAN_ORDER = "APPROVED_AT:DESC"


def loan_page(
    first: int | None = DEFAULT_PAGE_SIZE,
    after: str | None = None,
    filter: LoanFilterInput | None = None,
) -> PageArgs:
    """The checked arguments of a loans connection."""
    flt = loan_filter(filter)
    cursor = decode_cursor(after, LOAN_ORDER, datetime) if after else None
    page = page_request(first, cursor, descending=True)
    return PageArgs(flt, page, order_of(models.Loan.approved_at, LOAN_ORDER))


async def nested_loans(info: Info, applicant_key: int, args: PageArgs) -> Connection[Loan]:
    """One applicant's page of loans, batched with its siblings' through a loader."""
    loaders = info.context.loaders
    rows = await loaders.loans_page.load(Nested(applicant_key, (args.filter, args.page)))
    return build_connection(
        rows,
        args.page,
        to_node=Loan.from_row,
        cursor_of=row_cursor(args.order),
        count=lambda: loaders.loans_count.load(Nested(applicant_key, args.filter)),
    )


loan_key = key_for("Loan")


@strawberry.type
class LoanQueries:
    """Root fields for loans."""

    @strawberry.field(
        description="One loan by global id; null when there is none.",
        permission_classes=[READ],
        metadata=reads(ById("loans", loan_key)),
    )
    async def loan(
        self,
        info: Info,
        id: GlobalId,
    ) -> Loan | None:
        key = loan_key(id)
        row = await info.context.loaders.loan_by_id.load(key) if key else None
        return Loan.from_row(row) if row else None

    @strawberry.field(
        description="Loans, most recently approved first.",
        permission_classes=[READ],
        metadata=reads(Page(Domain.LOANS, loan_page)),
    )
    async def loans(
        self,
        info: Info,
        first: First = DEFAULT_PAGE_SIZE,
        after: After = None,
        filter: Annotated[
            LoanFilterInput | None, strawberry.argument(description="Conditions on loans.")
        ] = None,
    ) -> Connection[Loan]:
        args = loan_page(first, after, filter)
        db = info.context.db
        rows = await db.run(loan_repo.page_loans, args.filter, args.page)
        return build_connection(
            rows,
            args.page,
            to_node=Loan.from_row,
            cursor_of=row_cursor(args.order),
            count=lambda: db.run(loan_repo.count_loans, args.filter),
        )
