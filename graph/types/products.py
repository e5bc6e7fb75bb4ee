"""Loan products: the bounds and terms applications are made against."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from db.reads.plan import Column
from graph.compiled.reads import column, private
from graph.relations import money
from graph.relay import Node
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency


@strawberry.type(description="A loan product: the bounds and terms applications are made against.")
class LoanProduct(Node, table="loan_products"):
    key: strawberry.Private[int] = private("id")
    code: str = column("code", "Stable product code, such as PERSONAL-USD.")
    name: str = column("name", "Display name.")
    description: str = column("description", "What the product is for.")
    currency: str = column("currency", "ISO 4217 currency code of all amounts.")
    min_amount: Decimal = money(Column("min_amount"), "Smallest amount lent.")
    max_amount: Decimal = money(Column("max_amount"), "Largest amount lent.")
    min_term_months: int = column("min_term_months", "Shortest term, in months.")
    max_term_months: int = column("max_term_months", "Longest term, in months.")
    annual_interest_rate: Decimal = column(
        "annual_interest_rate", 'Nominal annual interest rate in percent, such as "9.99".'
    )
    amortization: AmortizationMethod = column("amortization", "How instalments are split.")
    frequency: RepaymentFrequency = column("frequency", "How often instalments fall due.")
    day_count: DayCount = column("day_count", "How interest is counted.")
    active: bool = column("active", "Whether new applications may use the product.")
    refer_below_score: Decimal | None = column(
        "refer_below_score",
        "An APPROVED decision needs an assessment scoring at least this (else POLICY_VIOLATION: "
        "refer it instead); null: no threshold.",
    )
    assessment_required: bool = column(
        "assessment_required", "Whether every decision must carry an assessment."
    )
