"""Per-request DataLoaders: every nested field is fetched in batches, never row by row."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from db.models import Applicant, Decision, Loan, LoanApplication, LoanProduct
from db.pagination import PageRequest
from db.repositories import applicants as applicant_repo
from db.repositories import applications as application_repo
from db.repositories import loans as loan_repo
from db.repositories import products as product_repo
from db.repositories.applications import ApplicationFilter, ApplicationSort
from db.session import RequestSession

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Row = TypeVar("Row")


@dataclass(frozen=True)
class ApplicationsPageKey:
    """One applicant's page of applications under given arguments."""

    applicant_id: int
    filter: ApplicationFilter
    sort: ApplicationSort
    page: PageRequest


def _by_key(
    db: RequestSession,
    fetch: Callable[[AsyncSession, Sequence[int]], Awaitable[Sequence[Row]]],
    key_of: Callable[[Row], int] = lambda row: row.id,  # type: ignore[attr-defined]
) -> DataLoader[int, Row | None]:
    async def load(ids: list[int]) -> list[Row | None]:
        async with db.use() as session:
            rows = await fetch(session, ids)
        found = {key_of(row): row for row in rows}
        return [found.get(i) for i in ids]

    return DataLoader(load_fn=load)


def _grouped(
    db: RequestSession,
    fetch: Callable[[AsyncSession, Sequence[int]], Awaitable[Sequence[Row]]],
    parent_of: Callable[[Row], int],
) -> DataLoader[int, list[Row]]:
    async def load(ids: list[int]) -> list[list[Row]]:
        async with db.use() as session:
            rows = await fetch(session, ids)
        groups: dict[int, list[Row]] = defaultdict(list)
        for row in rows:
            groups[parent_of(row)].append(row)
        return [groups.get(i, []) for i in ids]

    return DataLoader(load_fn=load)


def _split_by_args(keys: Sequence[Any], args_of: Callable[[Any], Hashable]) -> dict[Any, list[Any]]:
    """Keys grouped by their non-parent arguments: one statement per distinct argument set."""
    groups: dict[Any, list[Any]] = defaultdict(list)
    for key in keys:
        groups[args_of(key)].append(key)
    return groups


@dataclass
class Loaders:
    """All loaders of one request."""

    db: RequestSession
    applicant_by_id: DataLoader[int, Applicant | None] = field(init=False)
    product_by_id: DataLoader[int, LoanProduct | None] = field(init=False)
    application_by_id: DataLoader[int, LoanApplication | None] = field(init=False)
    loan_by_id: DataLoader[int, Loan | None] = field(init=False)
    decision_by_id: DataLoader[int, Decision | None] = field(init=False)
    decisions_by_application: DataLoader[int, list[Decision]] = field(init=False)
    loan_by_application: DataLoader[int, Loan | None] = field(init=False)
    applications_page: DataLoader[ApplicationsPageKey, list[LoanApplication]] = field(init=False)
    applications_count: DataLoader[tuple[int, ApplicationFilter], int] = field(init=False)

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
        self.applications_page = DataLoader(load_fn=self._load_applications_pages)
        self.applications_count = DataLoader(load_fn=self._load_applications_counts)

    async def _load_applications_pages(
        self, keys: list[ApplicationsPageKey]
    ) -> list[list[LoanApplication]]:
        results: dict[ApplicationsPageKey, list[LoanApplication]] = {}
        groups = _split_by_args(keys, lambda k: (k.filter, k.sort, k.page))
        for (flt, sort, page), group in groups.items():
            ids = [k.applicant_id for k in group]
            async with self.db.use() as session:
                rows = await application_repo.page_applications_per_applicant(
                    session, ids, flt, sort, page
                )
            by_parent: dict[int, list[LoanApplication]] = defaultdict(list)
            for row in rows:
                by_parent[row.applicant_id].append(row)
            for key in group:
                results[key] = by_parent.get(key.applicant_id, [])
        return [results[k] for k in keys]

    async def _load_applications_counts(
        self, keys: list[tuple[int, ApplicationFilter]]
    ) -> list[int]:
        results: dict[tuple[int, ApplicationFilter], int] = {}
        for flt, group in _split_by_args(keys, lambda k: k[1]).items():
            async with self.db.use() as session:
                counts = await application_repo.count_applications_per_applicant(
                    session, [applicant_id for applicant_id, _ in group], flt
                )
            for key in group:
                results[key] = counts.get(key[0], 0)
        return [results[k] for k in keys]
