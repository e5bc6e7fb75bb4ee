"""Root fields for loan products."""

from __future__ import annotations

from typing import Annotated

import strawberry

from db.repositories import products as product_repo
from graph.compiled.reads import Listed, reads
from graph.context import Info
from graph.permissions import READ
from graph.types.products import LoanProduct


def only_active(active_only: bool = True) -> bool:
    """Whether ``loanProducts`` lists only active products."""
    return active_only


@strawberry.type
class ProductQueries:
    @READ.field(
        "Loan products, ordered by code.",
        metadata=reads(Listed("loan_products", (("code", False),), only_active)),
    )
    async def loan_products(
        self,
        info: Info,
        active_only: Annotated[
            bool, strawberry.argument(description="Only products open to new applications.")
        ] = True,
    ) -> list[LoanProduct]:
        rows = await info.context.db.run(
            product_repo.list_products, active_only=only_active(active_only)
        )
        return [LoanProduct.from_row(row) for row in rows]
