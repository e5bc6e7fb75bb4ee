"""Per-request DataLoaders: every nested field is fetched in batches, never row by row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from db.models import (
    Applicant,
    Decision,
    Installment,
    Loan,
    LoanApplication,
    LoanProduct,
    Payment,
    PaymentAllocation,
)
from db.repositories import applicants as applicant_repo
from db.repositories import applications as application_repo
from db.repositories import loans as loan_repo
from db.repositories import products as product_repo
from db.repositories import servicing as servicing_repo
from db.session import RequestSession
from lending.allocation import InstallmentBalance

A = TypeVar("A", bound=Hashable)
Row = TypeVar("Row")


@dataclass(frozen=True)
class Nested(Generic[A]):
    """A nested list's key: the parent's id and the list's arguments (filter, order, page)."""

    parent: int
    args: A


def _by_key(
    db: RequestSession,
    fetch: Callable[[AsyncSession, Sequence[int]], Awaitable[Sequence[Row]]],
    key_of: Callable[[Row], int] = lambda row: row.id,  # type: ignore[attr-defined]
) -> DataLoader[int, Row | None]:
    async def load(ids: list[int]) -> list[Row | None]:
        found = {key_of(row): row for row in await db.run(fetch, ids)}
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=load)


def _grouped(
    db: RequestSession,
    fetch: Callable[[AsyncSession, Sequence[int]], Awaitable[Sequence[Row]]],
    parent_of: Callable[[Row], int],
) -> DataLoader[int, list[Row]]:
    async def load(ids: list[int]) -> list[list[Row]]:
        groups: dict[int, list[Row]] = defaultdict(list)
        for row in await db.run(fetch, ids):
            groups[parent_of(row)].append(row)
        return [groups.get(i, []) for i in ids]

    return DataLoader(load_fn=load)


def _by_args(keys: Sequence[Nested[A]]) -> dict[A, list[Nested[A]]]:
    groups: dict[A, list[Nested[A]]] = defaultdict(list)
    for key in keys:
        groups[key.args].append(key)
    return groups


def _pages(
    db: RequestSession,
    fetch: Callable[[AsyncSession, Sequence[int], A], Awaitable[Sequence[Row]]],
    parent_of: Callable[[Row], int],
) -> DataLoader[Nested[A], list[Row]]:
    """Pages of a nested connection: one statement per distinct set of arguments."""

    async def load(keys: list[Nested[A]]) -> list[list[Row]]:
        results: dict[Nested[A], list[Row]] = {}
        for args, group in _by_args(keys).items():
            by_parent: dict[int, list[Row]] = defaultdict(list)
            for row in await db.run(fetch, [k.parent for k in group], args):
                by_parent[parent_of(row)].append(row)
            for key in group:
                results[key] = by_parent.get(key.parent, [])
        return [results[k] for k in keys]

    return DataLoader(load_fn=load)


def _counts(
    db: RequestSession,
    fetch: Callable[[AsyncSession, Sequence[int], A], Awaitable[dict[int, int]]],
) -> DataLoader[Nested[A], int]:
    """totalCount of a nested connection, for many parents at once."""

    async def load(keys: list[Nested[A]]) -> list[int]:
        results: dict[Nested[A], int] = {}
        for args, group in _by_args(keys).items():
            counts = await db.run(fetch, [k.parent for k in group], args)
            for key in group:
                results[key] = counts.get(key.parent, 0)
        return [results[k] for k in keys]

    return DataLoader(load_fn=load)


@dataclass
class Loaders:
    """All loaders of one request, plus memoized derived data."""

    db: RequestSession
    applicant_by_id: DataLoader[int, Applicant | None] = field(init=False)
    product_by_id: DataLoader[int, LoanProduct | None] = field(init=False)
    application_by_id: DataLoader[int, LoanApplication | None] = field(init=False)
    loan_by_id: DataLoader[int, Loan | None] = field(init=False)
    decision_by_id: DataLoader[int, Decision | None] = field(init=False)
    decisions_by_application: DataLoader[int, list[Decision]] = field(init=False)
    loan_by_application: DataLoader[int, Loan | None] = field(init=False)
    applications_page: DataLoader[Nested[Any], list[LoanApplication]] = field(init=False)
    applications_count: DataLoader[Nested[Any], int] = field(init=False)
    loans_page: DataLoader[Nested[Any], list[Loan]] = field(init=False)
    loans_count: DataLoader[Nested[Any], int] = field(init=False)
    installments_by_loan: DataLoader[int, list[Installment]] = field(init=False)
    installment_by_id: DataLoader[int, Installment | None] = field(init=False)
    allocations_by_loan: DataLoader[int, list[PaymentAllocation]] = field(init=False)
    allocations_by_payment: DataLoader[int, list[PaymentAllocation]] = field(init=False)
    payment_by_id: DataLoader[int, Payment | None] = field(init=False)
    payments_page: DataLoader[Nested[Any], list[Payment]] = field(init=False)
    payments_count: DataLoader[Nested[Any], int] = field(init=False)
    # (loan id, as-of date or None for "everything recorded") -> balances by instalment number
    balances: dict[tuple[int, date | None], dict[int, InstallmentBalance]] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        db = self.db
        self.applicant_by_id = _by_key(db, applicant_repo.applicants_by_ids)
        self.product_by_id = _by_key(db, product_repo.products_by_ids)
        self.application_by_id = _by_key(db, application_repo.applications_by_ids)
        self.loan_by_id = _by_key(db, loan_repo.loans_by_ids)
        self.decision_by_id = _by_key(db, application_repo.decisions_by_ids)
        self.decisions_by_application = _grouped(
            db, application_repo.decisions_by_application_ids, lambda d: d.application_id
        )
        self.loan_by_application = _by_key(
            db, loan_repo.loans_by_application_ids, lambda loan: loan.application_id
        )
        self.applications_page = _pages(
            db,
            lambda s, ids, args: application_repo.page_applications_per_applicant(s, ids, *args),
            lambda row: row.applicant_id,
        )
        self.applications_count = _counts(db, application_repo.count_applications_per_applicant)
        self.loans_page = _pages(
            db,
            lambda s, ids, args: loan_repo.page_loans_per_applicant(s, ids, *args),
            lambda row: row.applicant_id,
        )
        self.loans_count = _counts(db, loan_repo.count_loans_per_applicant)
        self.installments_by_loan = _grouped(
            db, servicing_repo.installments_by_loan_ids, lambda i: i.loan_id
        )
        self.installment_by_id = _by_key(db, servicing_repo.installments_by_ids)
        self.allocations_by_loan = _grouped(
            db, servicing_repo.allocations_by_loan_ids, lambda a: a.loan_id
        )
        self.allocations_by_payment = _grouped(
            db, servicing_repo.allocations_by_payment_ids, lambda a: a.payment_id
        )
        self.payment_by_id = _by_key(db, servicing_repo.payments_by_ids)
        self.payments_page = _pages(
            db, servicing_repo.page_payments_per_loan, lambda row: row.loan_id
        )
        self.payments_count = _counts(
            db, lambda s, ids, _: servicing_repo.count_payments_per_loan(s, ids)
        )

    def prime(self, rows: Iterable[object]) -> None:
        """Seed the by-id loaders with rows a mutation just wrote (no read-back needed)."""
        by_type: dict[type, DataLoader[int, Any]] = {
            Applicant: self.applicant_by_id,
            LoanApplication: self.application_by_id,
            Loan: self.loan_by_id,
            Decision: self.decision_by_id,
            Payment: self.payment_by_id,
            Installment: self.installment_by_id,
        }
        for row in rows:
            loader = by_type.get(type(row))
            if loader is not None:
                loader.prime(row.id, row, force=True)  # type: ignore[attr-defined]
