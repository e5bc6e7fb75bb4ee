"""Loans: the type and its root query."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from db.repositories import loans as loan_repo
from db.repositories.loans import LoanFilter
from graph.context import Info
from graph.ids import parse_global_id, to_global_id
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
from graph.servicing import (
    AS_OF,
    Delinquency,
    Payment,
    RepaymentSchedule,
    loan_balances,
    loan_delinquency,
)
from lending import clock
from lending.delinquency import DelinquencyBucket
from lending.servicing import BUCKET_BOUNDS, left_to_pay
from lending.states import LoanAction, LoanStatus, available_loan_actions
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

if TYPE_CHECKING:
    from graph.applicants import Applicant
    from graph.applications import LoanApplication


@strawberry.type(description="A loan created by an approved application, with its terms.")
class Loan(Node):
    """A loan."""

    key: strawberry.Private[int]
    application_key: strawberry.Private[int]
    applicant_key: strawberry.Private[int]
    reference: str = strawberry.field(
        description="Human-friendly reference, such as LN-4F7P2K9QZM."
    )
    principal: Decimal = strawberry.field(description="Amount lent.")
    currency: str = strawberry.field(description="ISO 4217 currency code of all amounts.")
    annual_interest_rate: Decimal = strawberry.field(
        description='Nominal annual interest rate in percent, such as "9.99".'
    )
    term_months: int = strawberry.field(description="Term in months.")
    amortization: AmortizationMethod = strawberry.field(description="How instalments are split.")
    frequency: RepaymentFrequency = strawberry.field(description="How often instalments fall due.")
    day_count: DayCount = strawberry.field(description="How interest is counted.")
    status: LoanStatus = strawberry.field(description="Current status.")
    version: int = strawberry.field(
        description="Incremented on every change; pass as expectedVersion to avoid lost updates."
    )
    approved_at: datetime = strawberry.field(description="When the approving decision was made.")
    disbursed_on: date | None = strawberry.field(description="When the money was paid out.")
    maturity_date: date | None = strawberry.field(description="Due date of the last instalment.")

    @classmethod
    def from_row(cls, row: models.Loan) -> Loan:
        """The GraphQL view of a loan row."""
        return cls(
            id=strawberry.ID(to_global_id("Loan", row.id)),
            key=row.id,
            application_key=row.application_id,
            applicant_key=row.applicant_id,
            reference=row.reference,
            principal=row.principal,
            currency=row.currency,
            annual_interest_rate=row.annual_interest_rate,
            term_months=row.term_months,
            amortization=row.amortization,
            frequency=row.frequency,
            day_count=row.day_count,
            status=row.status,
            version=row.version,
            approved_at=row.approved_at,
            disbursed_on=row.disbursed_on,
            maturity_date=row.maturity_date,
        )

    @strawberry.field(description="The application the loan was approved on.")
    async def application(
        self, info: Info
    ) -> Annotated[LoanApplication, strawberry.lazy("graph.applications")]:
        from graph.applications import LoanApplication

        row = await info.context.loaders.application_by_id.load(self.application_key)
        assert row is not None
        return LoanApplication.from_row(row)

    @strawberry.field(
        description="The booked repayment schedule; null until the loan is disbursed."
    )
    async def schedule(self, info: Info) -> RepaymentSchedule | None:
        if self.disbursed_on is None:
            return None
        rows = await info.context.loaders.installments_by_loan.load(self.key)
        return RepaymentSchedule.from_rows(rows)

    @strawberry.field(
        description="Payments on the loan, reversed ones included, oldest received first."
    )
    async def payments(
        self,
        info: Info,
        first: First = DEFAULT_PAGE_SIZE,
        after: After = None,
    ) -> Connection[Payment]:
        order = "RECEIVED_ON:ASC"
        cursor = decode_cursor(after, order, date) if after else None
        page = page_request(first, cursor, descending=False)
        loaders = info.context.loaders
        rows = await loaders.payments_page.load(Nested(self.key, page))
        return build_connection(
            rows,
            page,
            to_node=Payment.from_row,
            cursor_of=lambda r: encode_cursor(order, r.received_on, r.id),
            count=lambda: loaders.payments_count.load(Nested(self.key, None)),
        )

    @strawberry.field(description="Principal not yet repaid; null until disbursed.")
    async def outstanding_principal(self, info: Info) -> Decimal | None:
        if self.disbursed_on is None:
            return None
        balances = await loan_balances(info, self.key, None)
        return sum((b.principal_due - b.principal_paid for b in balances.values()), Decimal(0))

    @strawberry.field(
        description="Everything left to pay on a date (null until disbursed): what the schedule "
        "asks for less payments received by then. Prepayments reduce future instalments in "
        "order; in this version there is no re-amortization and no rebate of future interest."
    )
    async def payoff_amount(
        self,
        info: Info,
        as_of: Annotated[date | None, strawberry.argument(description=AS_OF)] = None,
    ) -> Decimal | None:
        if self.disbursed_on is None:
            return None
        balances = await loan_balances(info, self.key, as_of or clock.today())
        return left_to_pay(balances.values())

    @strawberry.field(description="How far behind the loan is on a date.")
    async def delinquency(
        self,
        info: Info,
        as_of: Annotated[date | None, strawberry.argument(description=AS_OF)] = None,
    ) -> Delinquency:
        return await loan_delinquency(info, self.key, self.currency, as_of)

    @strawberry.field(
        description="What may be done to the loan now; the mutations enforce the same table."
    )
    def available_actions(self) -> list[LoanAction]:
        return available_loan_actions(self.status)

    @strawberry.field(description="The borrower.")
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


async def nested_loans(
    info: Info, applicant_key: int, first: int | None, after: str | None, f: LoanFilterInput | None
) -> Connection[Loan]:
    """One applicant's page of loans, batched with its siblings' through a loader."""
    flt = loan_filter(f)
    cursor = decode_cursor(after, LOAN_ORDER, datetime) if after else None
    page = page_request(first, cursor, descending=True)
    loaders = info.context.loaders
    rows = await loaders.loans_page.load(Nested(applicant_key, (flt, page)))
    return build_connection(
        rows,
        page,
        to_node=Loan.from_row,
        cursor_of=lambda r: encode_cursor(LOAN_ORDER, r.approved_at, r.id),
        count=lambda: loaders.loans_count.load(Nested(applicant_key, flt)),
    )


@strawberry.type
class LoanQueries:
    """Root fields for loans."""

    @strawberry.field(
        description="One loan by global id; null when there is none.", permission_classes=[READ]
    )
    async def loan(
        self,
        info: Info,
        id: GlobalId,
    ) -> Loan | None:
        parsed = parse_global_id(id)
        if parsed is None or parsed[0] != "Loan":
            return None
        row = await info.context.loaders.loan_by_id.load(parsed[1])
        return Loan.from_row(row) if row else None

    @strawberry.field(description="Loans, most recently approved first.", permission_classes=[READ])
    async def loans(
        self,
        info: Info,
        first: First = DEFAULT_PAGE_SIZE,
        after: After = None,
        filter: Annotated[
            LoanFilterInput | None, strawberry.argument(description="Conditions on loans.")
        ] = None,
    ) -> Connection[Loan]:
        flt = loan_filter(filter)
        cursor = decode_cursor(after, LOAN_ORDER, datetime) if after else None
        page = page_request(first, cursor, descending=True)
        db = info.context.db
        rows = await db.run(loan_repo.page_loans, flt, page)
        return build_connection(
            rows,
            page,
            to_node=Loan.from_row,
            cursor_of=lambda r: encode_cursor(LOAN_ORDER, r.approved_at, r.id),
            count=lambda: db.run(loan_repo.count_loans, flt),
        )
