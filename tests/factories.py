"""Small factories that build test data through the real services and repositories."""

from __future__ import annotations

import importlib.util
import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import Loan, LoanApplication, LoanProduct
from db.repositories import products as product_repo
from db.session import create_sessionmaker
from lending.allocation import InstallmentDue
from lending.audit import Caller
from lending.repayment import PaidPart
from lending.services import applications as service
from lending.services import loans as loan_service
from lending.services import payments as payment_service
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

_serial = itertools.count(1)
TESTER = Caller("tester")


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
        return await service.apply_for_loan(session, TESTER, **values)


async def decide(engine: AsyncEngine, application_id: int, outcome: str, **kwargs: Any) -> Any:
    """Commit a decision on an application."""
    values: dict[str, Any] = {
        "reason": f"{outcome.title()} in a test.",
        "approved_amount": None,
        "annual_interest_rate": None,
        "term_months": None,
    } | kwargs
    async with create_sessionmaker(engine)() as session, session.begin():
        return await service.decide_application(
            session, TESTER, application_id=application_id, outcome=outcome, **values
        )


async def create_loan(
    engine: AsyncEngine,
    *,
    disbursed_on: date | None = None,
    first_due_date: date | None = None,
    product_code: str = "PERSONAL-USD",
    **application: Any,
) -> Loan:
    """An approved loan (a new applicant's), disbursed when ``disbursed_on`` is given."""
    submitted = application.pop("submitted_at", None)
    if submitted is None and disbursed_on is not None:
        submitted = datetime.combine(disbursed_on, time(9), tzinfo=UTC) - timedelta(days=2)
    created = await create_application(
        engine, product_code=product_code, submitted_at=submitted, **application
    )
    decided = await decide(
        engine,
        created.id,
        "APPROVED",
        decided_at=submitted + timedelta(days=1) if submitted else None,
    )
    loan: Loan = decided.loan
    if disbursed_on is not None:
        async with create_sessionmaker(engine)() as session, session.begin():
            disbursed = await loan_service.disburse_loan(
                session,
                TESTER,
                loan_id=loan.id,
                disbursed_on=disbursed_on,
                first_due_date=first_due_date,
            )
            loan = disbursed.loan
    return loan


async def pay(
    engine: AsyncEngine, loan_id: int, amount: str, received_on: date, **kwargs: Any
) -> Any:
    """Commit a payment on a loan."""
    values: dict[str, Any] = {"reference": None} | kwargs
    async with create_sessionmaker(engine)() as session, session.begin():
        return await payment_service.record_payment(
            session, TESTER, loan_id=loan_id, amount=amount, received_on=received_on, **values
        )


def migration(filename: str) -> ModuleType:
    """A migration's module (migrations/versions/``filename``), for the SQL it defines."""
    path = Path(__file__).resolve().parents[1] / "migrations" / "versions" / filename
    spec = importlib.util.spec_from_file_location(path.stem.replace("-", "_"), path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Ledgers:
    """Every loan's instalments and the parts of its live payments, as the pure rules take them."""

    due: dict[int, list[InstallmentDue]]
    paid: dict[int, list[PaidPart]]


async def ledgers(engine: AsyncEngine) -> Ledgers:
    """The stored instalments and allocations of every loan."""
    async with engine.connect() as connection:
        installments = (
            await connection.execute(
                text(
                    "SELECT id, loan_id, number, due_date, principal_due, interest_due "
                    "FROM installments"
                )
            )
        ).all()
        allocations = (
            await connection.execute(
                text(
                    "SELECT loan_id, installment_id, principal, interest, interest_waived, "
                    "received_on FROM payment_allocations"
                )
            )
        ).all()
    found = Ledgers({}, {})
    number: dict[int, int] = {}
    for i in installments:
        found.due.setdefault(i.loan_id, []).append(
            InstallmentDue(i.number, i.due_date, i.principal_due, i.interest_due)
        )
        number[i.id] = i.number
    for a in allocations:
        found.paid.setdefault(a.loan_id, []).append(
            PaidPart(
                number[a.installment_id], a.principal, a.interest, a.received_on, a.interest_waived
            )
        )
    return found


def month_ends(today: date, count: int = 12) -> list[date]:
    """The last days of the ``count`` months before ``today``'s, oldest first (the dashboard's
    PAR chart shows the twelve)."""
    ends, first = [], today.replace(day=1)
    for _ in range(count):
        ends.append(first - timedelta(days=1))
        first = ends[-1].replace(day=1)
    return ends[::-1]
