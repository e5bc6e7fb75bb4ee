"""Loans: terms, status, schedule, payments, balances and delinquency."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from db.reads.plan import Column, Computation, Domain, Money, PageArgs, ToOne
from db.repositories.loans import LoanFilter
from graph.compiled.reads import ByStatus, Compute, Embedded, Page, column, private, reads
from graph.context import Info
from graph.relations import money, page_of, to_one
from graph.relay import After, Before, Connection, First, Last, Node, paginate
from graph.types.calculations import SettlementCalculation
from graph.types.servicing import (
    AS_OF,
    Delinquency,
    Payment,
    Reminder,
    RepaymentSchedule,
    assessed_on,
    loan_balances,
    loan_delinquency,
    payment_page,
    reminder_page,
)
from lending import clock
from lending.delinquency import BUCKET_BOUNDS, DelinquencyBucket
from lending.money import as_written
from lending.repayment import left_to_pay
from lending.settlement import Accrual, AccrualTerms, accrual, settlement_quote
from lending.settlement import SettlementQuote as Quote
from lending.states import LoanAction, LoanStatus, available_loan_actions
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

if TYPE_CHECKING:
    from graph.types.applicants import Applicant
    from graph.types.applications import LoanApplication


PAYMENTS = Page(Domain.PAYMENTS, payment_page, "id", "loan_id")
REMINDERS = Page(Domain.REMINDERS, reminder_page, "id", "loan_id")


@strawberry.type(description="What settles a loan early on a date, and what it waives.")
class SettlementQuote:
    amount: Decimal = strawberry.field(
        description="What to pay: overdue + principal + accruedInterest."
    )
    principal: Decimal = strawberry.field(
        description="Principal of the instalments falling due after the date, still unpaid."
    )
    accrued_interest: Decimal = strawberry.field(
        description="Interest of the current period up to the date, by the loan's day count."
    )
    overdue: Decimal = strawberry.field(
        description="Everything unpaid of the instalments due on or before the date."
    )
    rebate: Decimal = strawberry.field(
        description="Scheduled interest not yet accrued, which settling waives."
    )
    valid_on: date = strawberry.field(description="The date the quote is for.")
    calculation: SettlementCalculation | None = strawberry.field(
        description="How accruedInterest and the rebate were computed; null on the last due "
        "date, when no interest is left to accrue."
    )

    @classmethod
    def of(cls, quote: Quote, accrued: Accrual | None, terms: AccrualTerms) -> SettlementQuote:
        """The GraphQL view of a quote and the accrual it was made with."""
        return cls(
            amount=quote.amount,
            principal=quote.principal,
            accrued_interest=quote.accrued_interest,
            overdue=quote.overdue,
            rebate=quote.rebate,
            valid_on=quote.valid_on,
            calculation=None
            if accrued is None
            else SettlementCalculation.of(
                accrued, terms.day_count, quote.accrued_interest, quote.rebate, terms.currency
            ),
        )


@strawberry.type(description="A loan created by an approved application, with its terms.")
class Loan(Node, table="loans"):
    key: strawberry.Private[int] = private("id")
    application_key: strawberry.Private[int] = private("application_id")
    applicant_key: strawberry.Private[int] = private("applicant_id")
    reference: str = column("reference", "Human-friendly reference, such as LN-4F7P2K9QZM.")
    principal: Decimal = money(Column("principal"), "Amount lent.")
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
    closed_reason: str | None = column(
        "closed_reason", "Why the loan was cancelled or written off, if it was."
    )
    closed_at: datetime | None = column("closed_at", "When it was cancelled or written off.")
    written_off_amount: Decimal | None = money(
        Column("written_off_amount"), "What was left to pay when the loan was written off."
    )
    settlement_rebate: Decimal | None = money(
        Column("settlement_rebate"),
        "The interest an early settlement waived (instalments keep their scheduled interest; "
        "their allocations show it as waived); null unless settled.",
    )
    application: Annotated[LoanApplication, strawberry.lazy("graph.types.applications")] = to_one(
        ToOne("loan_applications", "application_id"), "The application the loan was approved on."
    )

    @strawberry.field(
        description="The booked repayment schedule; null until the loan is disbursed.",
        metadata=reads(Embedded(when="disbursed_on")),
    )
    async def schedule(self, info: Info) -> RepaymentSchedule | None:
        if self.disbursed_on is None:
            return None
        rows = await info.context.loaders.installments_by_loan.load(self.key)
        return RepaymentSchedule.from_rows(rows, self.currency)

    @strawberry.field(
        description="Payments on the loan, reversed ones included, oldest received first.",
        metadata=reads(PAYMENTS),
    )
    async def payments(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Payment]:
        return await page_of(info, PAYMENTS, payment_page(first, after, last, before), self)

    @strawberry.field(
        description="Reminders requested on the loan's instalments, newest first.",
        metadata=reads(REMINDERS),
    )
    async def reminders(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Reminder]:
        return await page_of(info, REMINDERS, reminder_page(first, after, last, before), self)

    @strawberry.field(
        description="What would repay the loan in full on a date (default today, UTC): "
        "everything due by then, the principal of later instalments and the interest accrued "
        "in the current period; the rest of the interest is waived. Null unless ACTIVE, or for "
        "a date before disbursement or the latest payment, or after maturity. A quote assumes "
        "no other payment arrives first; settleLoan takes exactly its amount."
    )
    async def settlement_quote(
        self,
        info: Info,
        as_of: Annotated[date | None, strawberry.argument(description=AS_OF)] = None,
    ) -> SettlementQuote | None:
        if self.status is not LoanStatus.ACTIVE or self.disbursed_on is None:
            return None
        assert self.maturity_date is not None
        day = assessed_on(as_of)
        allocations = await info.context.loaders.allocations_by_loan.load(self.key)
        last = max((a.received_on for a in allocations), default=self.disbursed_on)
        if not max(self.disbursed_on, last) <= day <= self.maturity_date:
            return None
        balances = await loan_balances(info, self.key, None)
        terms = AccrualTerms(self.disbursed_on, self.day_count, self.currency)
        found = list(balances.values())
        quote = settlement_quote(found, day, terms)
        return SettlementQuote.of(quote, accrual(found, day, terms), terms)

    @strawberry.field(
        description="Principal not yet repaid; null until disbursed.",
        metadata=reads(Money(Compute(Computation.OUTSTANDING_PRINCIPAL))),
    )
    async def outstanding_principal(self, info: Info) -> Decimal | None:
        if self.disbursed_on is None:
            return None
        balances = await loan_balances(info, self.key, None)
        left = sum((b.principal_due - b.principal_paid for b in balances.values()), Decimal(0))
        return as_written(left, self.currency)

    @strawberry.field(
        description="Everything left to pay on a date (null until disbursed): what the schedule "
        "asks for less payments received by then. Prepayments reduce future instalments in "
        "order; in this version there is no re-amortization and no rebate of future interest.",
        metadata=reads(Money(Compute(Computation.PAYOFF, bind=assessed_on))),
    )
    async def payoff_amount(
        self,
        info: Info,
        as_of: Annotated[date | None, strawberry.argument(description=AS_OF)] = None,
    ) -> Decimal | None:
        if self.disbursed_on is None:
            return None
        balances = await loan_balances(info, self.key, assessed_on(as_of))
        return as_written(left_to_pay(balances.values()), self.currency)

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

    applicant: Annotated[Applicant, strawberry.lazy("graph.types.applicants")] = to_one(
        ToOne("applicants", "applicant_id"), "The borrower."
    )


@strawberry.input(description="Conditions on loans; all given conditions must hold.")
class LoanFilterInput:
    status: list[LoanStatus] | None = strawberry.field(
        default=None, description="Any of these statuses."
    )
    delinquency_bucket: list[DelinquencyBucket] | None = strawberry.field(
        default=None, description="Active loans in any of these delinquency buckets on `asOf`."
    )
    as_of: date | None = strawberry.field(
        default=None, description="The date delinquency is assessed on; default today (UTC)."
    )


LoanFilterArg = Annotated[
    LoanFilterInput | None, strawberry.argument(description="Conditions on loans.")
]


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


def loan_page(
    first: int | None = None,
    after: str | None = None,
    filter: LoanFilterInput | None = None,
    last: int | None = None,
    before: str | None = None,
) -> PageArgs:
    """The checked arguments of a loans connection: most recently approved first."""
    return paginate(
        first,
        after,
        last=last,
        before=before,
        sort=models.Loan.approved_at,
        name="APPROVED_AT:DESC",
        descending=True,
        filter=loan_filter(filter),
    )
