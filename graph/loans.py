"""Loans: the type and its root query."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from graph.context import Info
from graph.ids import parse_global_id, to_global_id
from graph.relay import Node
from lending.states import LoanStatus
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

    @strawberry.field(description="The borrower.")
    async def applicant(
        self, info: Info
    ) -> Annotated[Applicant, strawberry.lazy("graph.applicants")]:
        from graph.applicants import Applicant

        row = await info.context.loaders.applicant_by_id.load(self.applicant_key)
        assert row is not None
        return Applicant.from_row(row)


@strawberry.type
class LoanQueries:
    """Root fields for loans."""

    @strawberry.field(description="One loan by global id; null when there is none.")
    async def loan(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global id.")],
    ) -> Loan | None:
        parsed = parse_global_id(id)
        if parsed is None or parsed[0] != "Loan":
            return None
        row = await info.context.loaders.loan_by_id.load(parsed[1])
        return Loan.from_row(row) if row else None
