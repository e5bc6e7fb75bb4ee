"""Loan products: the type and its query."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry

from db import models
from db.repositories import products as product_repo
from graph.context import Info
from graph.ids import to_global_id
from graph.permissions import READ
from graph.relay import Node
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency


@strawberry.type(description="A loan product: the bounds and terms applications are made against.")
class LoanProduct(Node):
    """A loan product."""

    key: strawberry.Private[int]
    code: str = strawberry.field(description="Stable product code, such as PERSONAL-USD.")
    name: str = strawberry.field(description="Display name.")
    description: str = strawberry.field(description="What the product is for.")
    currency: str = strawberry.field(description="ISO 4217 currency code of all amounts.")
    min_amount: Decimal = strawberry.field(description="Smallest amount lent.")
    max_amount: Decimal = strawberry.field(description="Largest amount lent.")
    min_term_months: int = strawberry.field(description="Shortest term, in months.")
    max_term_months: int = strawberry.field(description="Longest term, in months.")
    annual_interest_rate: Decimal = strawberry.field(
        description='Nominal annual interest rate in percent, such as "9.99".'
    )
    amortization: AmortizationMethod = strawberry.field(description="How instalments are split.")
    frequency: RepaymentFrequency = strawberry.field(description="How often instalments fall due.")
    day_count: DayCount = strawberry.field(description="How interest is counted.")
    active: bool = strawberry.field(description="Whether new applications may use the product.")

    @classmethod
    def from_row(cls, row: models.LoanProduct) -> LoanProduct:
        """The GraphQL view of a product row."""
        return cls(
            id=strawberry.ID(to_global_id("LoanProduct", row.id)),
            key=row.id,
            code=row.code,
            name=row.name,
            description=row.description,
            currency=row.currency,
            min_amount=row.min_amount,
            max_amount=row.max_amount,
            min_term_months=row.min_term_months,
            max_term_months=row.max_term_months,
            annual_interest_rate=row.annual_interest_rate,
            amortization=row.amortization,
            frequency=row.frequency,
            day_count=row.day_count,
            active=row.active,
        )


@strawberry.type
class ProductQueries:
    """Root fields for products."""

    @strawberry.field(description="Loan products, ordered by code.", permission_classes=[READ])
    async def loan_products(
        self,
        info: Info,
        active_only: Annotated[
            bool, strawberry.argument(description="Only products open to new applications.")
        ] = True,
    ) -> list[LoanProduct]:
        rows = await info.context.db.run(product_repo.list_products, active_only=active_only)
        return [LoanProduct.from_row(row) for row in rows]
