"""The portfolio root field: a lender's first screen, one entry per currency.

Definitions are lending.portfolio's; the figures come from one statement
(db.repositories.portfolio), answered per field: nothing here is a row of a table.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

import strawberry

from db.repositories import portfolio as repo
from graph.context import Info
from graph.errors import ClientError
from graph.permissions import OVERSEE
from lending.delinquency import DelinquencyBucket
from lending.portfolio import CurrencyTotals
from lending.states import LoanStatus

# Product codes a filter may name: more than any lender sells, few enough to check at once.
MAX_PRODUCT_CODES = 100

ACTIVE_ONLY = "Counted over the loans ACTIVE on `asOf`."


@strawberry.type(description="How many loans were in one state on `asOf`.")
class LoanStateCount:
    status: LoanStatus = strawberry.field(
        description="The state on `asOf`: CANCELLED or WRITTEN_OFF once closed so by then, "
        "APPROVED until disbursed, then PAID_OFF once payments received by then repaid all "
        "the principal (an early settlement does), else ACTIVE."
    )
    loans: int = strawberry.field(description="Loans in that state.")


@strawberry.type(description="The ACTIVE loans of one delinquency bucket on `asOf`.")
class PortfolioBucket:
    bucket: DelinquencyBucket = strawberry.field(
        description="Days past due of the loan's oldest instalment unpaid on `asOf`."
    )
    loans: int = strawberry.field(description="Loans in the bucket.")
    outstanding_principal: Decimal = strawberry.field(
        description="Their principal not yet repaid by payments received by `asOf`."
    )
    overdue_amount: Decimal = strawberry.field(
        description="Their instalments due before `asOf` and unpaid on it (principal and "
        "interest), as `Loan.delinquency(asOf).overdueAmount` adds them."
    )


@strawberry.type(description="Loans and an amount.")
class LoansAndAmount:
    loans: int = strawberry.field(description="How many loans.")
    amount: Decimal = strawberry.field(description="Their amount, in the entry's currency.")


@strawberry.type(description="What payments received by `asOf` repaid.")
class Collected:
    principal: Decimal = strawberry.field(description="Principal repaid.")
    interest: Decimal = strawberry.field(
        description="Interest paid (interest waived by an early settlement is not collected)."
    )


@strawberry.type(
    description="The portfolio in one currency on a date (amounts are never added across "
    "currencies). Payments received after `asOf` are ignored, as `Loan.delinquency(asOf)` "
    "ignores them; reversed payments count on no day (a reversal corrects the record)."
)
class Portfolio:
    currency: str = strawberry.field(description="ISO 4217 code of every amount of the entry.")
    as_of: date = strawberry.field(description="The date it is assessed on.")
    loans_by_status: list[LoanStateCount] = strawberry.field(
        description="Loans approved by `asOf`, by their state then, every state listed."
    )
    outstanding_principal: Decimal = strawberry.field(
        description="Principal disbursed less principal repaid by payments received by "
        f"`asOf`. {ACTIVE_ONLY}"
    )
    overdue_amount: Decimal = strawberry.field(
        description="Instalments due before `asOf` and unpaid on it, principal and interest. "
        + ACTIVE_ONLY
    )
    par30: Decimal = strawberry.field(
        description="Portfolio at risk (CGAP): the outstanding principal of the loans more "
        "than 30 days past due (the whole loan's, not only what is late) over all outstanding "
        "principal, a ratio rounded half to even to 4 places; 0.0000 when nothing is "
        "outstanding."
    )
    par60: Decimal = strawberry.field(description="As `par30`, for more than 60 days.")
    par90: Decimal = strawberry.field(description="As `par30`, for more than 90 days.")
    buckets: list[PortfolioBucket] = strawberry.field(
        description="The ACTIVE loans by delinquency bucket, every bucket listed, CURRENT first."
    )
    disbursed: LoansAndAmount = strawberry.field(
        description="Loans disbursed by `asOf` (from `disbursedFrom` when the filter gives "
        "it), and their principal."
    )
    collected: Collected = strawberry.field(
        description="What payments received by `asOf` on those loans repaid."
    )
    written_off: LoansAndAmount = strawberry.field(
        description="Loans written off by `asOf`, and the principal they still owed then."
    )

    @classmethod
    def of(cls, totals: CurrencyTotals, as_of: date) -> Portfolio:
        """The GraphQL view of a currency's totals."""
        return cls(
            currency=totals.currency,
            as_of=as_of,
            loans_by_status=[
                LoanStateCount(status=s, loans=n) for s, n in totals.loans_by_state.items()
            ],
            outstanding_principal=totals.outstanding_principal,
            overdue_amount=totals.overdue_amount,
            par30=totals.par(30),
            par60=totals.par(60),
            par90=totals.par(90),
            buckets=[
                PortfolioBucket(
                    bucket=bucket,
                    loans=b.loans,
                    outstanding_principal=b.outstanding_principal,
                    overdue_amount=b.overdue_amount,
                )
                for bucket, b in totals.buckets.items()
            ],
            disbursed=LoansAndAmount(loans=totals.disbursed_loans, amount=totals.disbursed_amount),
            collected=Collected(
                principal=totals.collected_principal, interest=totals.collected_interest
            ),
            written_off=LoansAndAmount(
                loans=totals.written_off_loans, amount=totals.written_off_amount
            ),
        )


@strawberry.input(description="Which loans a portfolio covers; every loan when omitted.")
class PortfolioFilterInput:
    product_codes: list[str] | None = strawberry.field(
        default=None,
        description=f"Loans of these products only (at most {MAX_PRODUCT_CODES} codes).",
    )
    disbursed_from: date | None = strawberry.field(
        default=None,
        description="Loans disbursed on or after this day only (so none not yet disbursed); "
        "it also opens the window of the flows (`disbursed`, `collected`, `writtenOff`).",
    )
    disbursed_to: date | None = strawberry.field(
        default=None, description="Loans disbursed on or before this day only."
    )


def portfolio_filter(given: PortfolioFilterInput | None) -> repo.PortfolioFilter:
    """The checked filter; BAD_USER_INPUT for too many codes or an empty window."""
    if given is None:
        return repo.PortfolioFilter()
    codes = given.product_codes
    if codes is not None and len(codes) > MAX_PRODUCT_CODES:
        raise ClientError(f"`productCodes` may name at most {MAX_PRODUCT_CODES} products.")
    start, end = given.disbursed_from, given.disbursed_to
    if start is not None and end is not None and start > end:
        raise ClientError("`disbursedFrom` must not be after `disbursedTo`.")
    return repo.PortfolioFilter(tuple(codes) if codes is not None else None, start, end)


@strawberry.type
class PortfolioQueries:
    @OVERSEE.field(
        "The portfolio on a date, one entry per currency that has a loan the filter selects, "
        "by currency code."
    )
    async def portfolio(
        self,
        info: Info,
        as_of: Annotated[date, strawberry.argument(description="The date to assess on.")],
        filter: Annotated[
            PortfolioFilterInput | None, strawberry.argument(description="Which loans.")
        ] = None,
    ) -> list[Portfolio]:
        found = await info.context.db.run(repo.portfolio, as_of, portfolio_filter(filter))
        return [Portfolio.of(totals, as_of) for totals in found]
