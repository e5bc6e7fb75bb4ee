"""Per-request DataLoaders: every nested field is fetched in batches, never row by row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
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


class Loaders:
    """The loaders of one request, each made when first used, plus memoized derived data.

    A request uses a few of them (a compiled read none at all); making all eighteen up front
    cost about a millisecond per request.
    """

    def __init__(self, db: RequestSession) -> None:
        self.db = db
        # (loan id, as-of date or None for "everything recorded") -> balances by instalment number
        self.balances: dict[tuple[int, date | None], dict[int, InstallmentBalance]] = {}

    @cached_property
    def applicant_by_id(self) -> DataLoader[int, Applicant | None]:
        return _by_key(self.db, applicant_repo.applicants_by_ids)

    @cached_property
    def product_by_id(self) -> DataLoader[int, LoanProduct | None]:
        return _by_key(self.db, product_repo.products_by_ids)

    @cached_property
    def application_by_id(self) -> DataLoader[int, LoanApplication | None]:
        return _by_key(self.db, application_repo.applications_by_ids)

    @cached_property
    def loan_by_id(self) -> DataLoader[int, Loan | None]:
        return _by_key(self.db, loan_repo.loans_by_ids)

    @cached_property
    def decision_by_id(self) -> DataLoader[int, Decision | None]:
        return _by_key(self.db, application_repo.decisions_by_ids)

    @cached_property
    def decisions_by_application(self) -> DataLoader[int, list[Decision]]:
        return _grouped(
            self.db, application_repo.decisions_by_application_ids, lambda d: d.application_id
        )

    @cached_property
    def loan_by_application(self) -> DataLoader[int, Loan | None]:
        return _by_key(
            self.db, loan_repo.loans_by_application_ids, lambda loan: loan.application_id
        )

    @cached_property
    def applications_page(self) -> DataLoader[Nested[Any], list[LoanApplication]]:
        return _pages(
            self.db,
            lambda s, ids, args: application_repo.page_applications_per_applicant(s, ids, *args),
            lambda row: row.applicant_id,
        )

    @cached_property
    def applications_count(self) -> DataLoader[Nested[Any], int]:
        return _counts(self.db, application_repo.count_applications_per_applicant)

    @cached_property
    def loans_page(self) -> DataLoader[Nested[Any], list[Loan]]:
        return _pages(
            self.db,
            lambda s, ids, args: loan_repo.page_loans_per_applicant(s, ids, *args),
            lambda row: row.applicant_id,
        )

    @cached_property
    def loans_count(self) -> DataLoader[Nested[Any], int]:
        return _counts(self.db, loan_repo.count_loans_per_applicant)

    @cached_property
    def installments_by_loan(self) -> DataLoader[int, list[Installment]]:
        return _grouped(self.db, servicing_repo.installments_by_loan_ids, lambda i: i.loan_id)

    @cached_property
    def installment_by_id(self) -> DataLoader[int, Installment | None]:
        return _by_key(self.db, servicing_repo.installments_by_ids)

    @cached_property
    def allocations_by_loan(self) -> DataLoader[int, list[PaymentAllocation]]:
        return _grouped(self.db, servicing_repo.allocations_by_loan_ids, lambda a: a.loan_id)

    @cached_property
    def allocations_by_payment(self) -> DataLoader[int, list[PaymentAllocation]]:
        return _grouped(self.db, servicing_repo.allocations_by_payment_ids, lambda a: a.payment_id)

    @cached_property
    def payment_by_id(self) -> DataLoader[int, Payment | None]:
        return _by_key(self.db, servicing_repo.payments_by_ids)

    @cached_property
    def payments_page(self) -> DataLoader[Nested[Any], list[Payment]]:
        return _pages(self.db, servicing_repo.page_payments_per_loan, lambda row: row.loan_id)

    @cached_property
    def payments_count(self) -> DataLoader[Nested[Any], int]:
        return _counts(self.db, lambda s, ids, _: servicing_repo.count_payments_per_loan(s, ids))

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
