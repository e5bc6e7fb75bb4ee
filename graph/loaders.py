"""Per-request DataLoaders: every nested field is fetched in batches, never row by row.

Loaders are made on first use and keyed by what they read, as the fields declare it: rows of
a table by a column (``one``, ``many``: the relations of db.reads.plan), pages of a domain per
parent (``pages``, ``counts``: nested connections). Fields that declare the same read share a
loader, so a schedule, its balances and its oldest overdue instalment cost one statement.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

from strawberry.dataloader import DataLoader

from db.reads.plan import Domain, PageArgs, ToMany
from db.records import AllocationRecord, DecisionRecord, InstallmentRecord, Record
from db.repositories import linked, pages
from db.session import RequestSession
from lending.allocation import InstallmentBalance

A = TypeVar("A", bound=Hashable)
K = TypeVar("K")
T = TypeVar("T")

INSTALLMENTS = ToMany("installments", "id", "loan_id", (("number", False),))
DECISIONS = ToMany("decisions", "id", "application_id", (("decided_at", False), ("id", False)))
ALLOCATIONS_OF_LOAN = ToMany("payment_allocations", "id", "loan_id", (("id", False),))


@dataclass(frozen=True)
class Nested(Generic[A]):
    """A nested list's key: the parent's id and the list's arguments (a filter, a page)."""

    parent: int
    args: A


class SharedLoader(DataLoader[K, T]):
    """A DataLoader whose loads outlive a cancelled wait.

    Every field that asks for the same key awaits the same load. When a field fails, the
    executor cancels its siblings' waits; a bare DataLoader future would be cancelled with
    them, and a field elsewhere in the document waiting for the same key would end with
    CancelledError instead of its answer. Each wait is on a shield of its own, and the request's
    session is not given back before the load is done (``RequestSession.keep``).
    """

    def __init__(self, db: RequestSession, load_fn: Any) -> None:
        super().__init__(load_fn=load_fn)
        self.db = db

    def load(self, key: K) -> Awaitable[T]:
        found = super().load(key)
        assert isinstance(found, asyncio.Future)
        if not found.done():
            self.db.keep(found)
        return asyncio.shield(found)


def _by_args(keys: Sequence[Nested[A]]) -> dict[A, list[Nested[A]]]:
    groups: dict[A, list[Nested[A]]] = defaultdict(list)
    for key in keys:
        groups[key.args].append(key)
    return groups


class Loaders:
    """The loaders of one request, plus memoized derived data."""

    def __init__(self, db: RequestSession) -> None:
        self.db = db
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}
        # (loan id, as-of date or None for "everything recorded") -> balances by instalment number
        self.balances: dict[tuple[int, date | None], dict[int, InstallmentBalance]] = {}
        # loan id -> its instalments' calculations by number (graph.types.calculations)
        self.calculations: dict[int, dict[int, Any]] = {}

    def one(self, table: str, column: str = "id") -> DataLoader[Any, Any]:
        """The row of ``table`` whose ``column`` (unique) is the key, or None."""
        key = ("one", table, column)
        if key not in self._loaders:

            async def load(keys: list[Any]) -> list[Any]:
                rows = await self.db.run(linked.rows_linked, table, column, keys)
                found = {getattr(row, column): row for row in rows}
                return [found.get(k) for k in keys]

            self._loaders[key] = SharedLoader(self.db, load)
        return self._loaders[key]

    def many(self, link: ToMany) -> DataLoader[int, list[Any]]:
        """The rows of ``link.table`` linked to the key by ``link.remote``, in ``link.order``."""
        key = ("many", link.table, link.remote, link.order)
        if key not in self._loaders:

            async def load(keys: list[int]) -> list[list[Any]]:
                groups: dict[int, list[Any]] = defaultdict(list)
                for row in await self.db.run(
                    linked.rows_linked, link.table, link.remote, keys, link.order
                ):
                    groups[getattr(row, link.remote)].append(row)
                return [groups.get(k, []) for k in keys]

            self._loaders[key] = SharedLoader(self.db, load)
        return self._loaders[key]

    def pages(self, domain: Domain, parent: str) -> DataLoader[Nested[PageArgs], list[Any]]:
        """Pages of ``domain`` per parent: one statement per distinct set of arguments."""
        key = ("pages", domain, parent)
        if key not in self._loaders:

            async def load(keys: list[Nested[PageArgs]]) -> list[list[Any]]:
                results: dict[Nested[PageArgs], list[Any]] = {}
                for args, group in _by_args(keys).items():
                    by_parent: dict[int, list[Any]] = defaultdict(list)
                    parents = [k.parent for k in group]
                    for row in await self.db.run(
                        pages.pages_per_parent, domain, parent, parents, args
                    ):
                        by_parent[getattr(row, parent)].append(row)
                    for k in group:
                        results[k] = by_parent.get(k.parent, [])
                return [results[k] for k in keys]

            self._loaders[key] = SharedLoader(self.db, load)
        return self._loaders[key]

    def counts(self, domain: Domain, parent: str) -> DataLoader[Nested[Any], int]:
        """totalCount of ``domain`` per parent, for many parents at once."""
        key = ("counts", domain, parent)
        if key not in self._loaders:

            async def load(keys: list[Nested[Any]]) -> list[int]:
                results: dict[Nested[Any], int] = {}
                for flt, group in _by_args(keys).items():
                    parents = [k.parent for k in group]
                    found = await self.db.run(pages.counts_per_parent, domain, parent, parents, flt)
                    for k in group:
                        results[k] = found.get(k.parent, 0)
                return [results[k] for k in keys]

            self._loaders[key] = SharedLoader(self.db, load)
        return self._loaders[key]

    @property
    def installments_by_loan(self) -> DataLoader[int, list[InstallmentRecord]]:
        """A loan's instalments in order."""
        return self.many(INSTALLMENTS)

    @property
    def decisions_by_application(self) -> DataLoader[int, list[DecisionRecord]]:
        """An application's decisions, oldest first."""
        return self.many(DECISIONS)

    @property
    def allocations_by_loan(self) -> DataLoader[int, list[AllocationRecord]]:
        """A loan's allocations, in the order they were applied."""
        return self.many(ALLOCATIONS_OF_LOAN)

    def prime(self, rows: Iterable[Record]) -> None:
        """Seed the by-id loaders with rows a mutation just wrote (no read-back needed)."""
        for row in rows:
            table = getattr(row, "__tablename__", None)
            if table is not None:
                self.one(table).prime(row.id, row, force=True)
