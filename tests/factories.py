"""Small factories that build test data through the real services and repositories."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import LoanApplication, LoanProduct
from db.repositories import products as product_repo
from db.session import create_sessionmaker
from lending.services import applications as service
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

_serial = itertools.count(1)


async def create_product(engine: AsyncEngine, **overrides: Any) -> LoanProduct:
    """A committed loan product (PERSONAL-USD-like unless overridden)."""
    values: dict[str, Any] = {
        "code": "PERSONAL-USD",
        "name": "Personal loan",
        "description": "Unsecured personal loan.",
        "currency": "USD",
        "min_amount": Decimal("1000.00"),
        "max_amount": Decimal("50000.00"),
        "min_term_months": 6,
        "max_term_months": 60,
        "annual_interest_rate": Decimal("12.500000"),
        "amortization": AmortizationMethod.ANNUITY,
        "frequency": RepaymentFrequency.MONTHLY,
        "day_count": DayCount.THIRTY_360,
        "active": True,
    } | overrides
    async with create_sessionmaker(engine)() as session, session.begin():
        return await product_repo.add_product(session, LoanProduct(**values))


async def create_application(
    engine: AsyncEngine, *, product_code: str = "PERSONAL-USD", **overrides: Any
) -> LoanApplication:
    """A committed SUBMITTED application for a new applicant unless overridden."""
    n = next(_serial)
    values: dict[str, Any] = {
        "full_name": f"Applicant {n}",
        "email": f"applicant{n}@example.com",
        "phone": None,
        "product_code": product_code,
        "amount": Decimal("10000.00"),
        "term_months": 24,
        "purpose": "Test",
        "declared_monthly_income": None,
    } | overrides
    async with create_sessionmaker(engine)() as session, session.begin():
        return await service.apply_for_loan(session, **values)


async def decide(engine: AsyncEngine, application_id: int, outcome: str, **kwargs: Any) -> Any:
    """Commit a decision on an application."""
    values: dict[str, Any] = {
        "reason": f"{outcome.title()} in a test.",
        "approved_amount": None,
        "annual_interest_rate": None,
        "term_months": None,
        "decided_by": "tester",
    } | kwargs
    async with create_sessionmaker(engine)() as session, session.begin():
        return await service.decide_application(
            session, application_id=application_id, outcome=outcome, **values
        )
