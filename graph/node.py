"""`node(id:)` and `nodes(ids:)`: any object by its global id, through the same loaders."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import strawberry
from strawberry.dataloader import DataLoader

from graph.applicants import Applicant
from graph.applications import Decision, LoanApplication
from graph.context import Info
from graph.errors import ClientError
from graph.ids import parse_global_id
from graph.loaders import Loaders
from graph.loans import Loan
from graph.permissions import READ
from graph.products import LoanProduct
from graph.reads import AnyNode, reads
from graph.relay import MAX_PAGE_SIZE, GlobalId, Node
from graph.servicing import Installment, Payment

LoaderOf = Callable[[Loaders], DataLoader[int, Any]]

# Global-id type name -> (its loader, its GraphQL view, its table).
RESOLVERS: dict[str, tuple[LoaderOf, Callable[[Any], Node], str]] = {
    "Applicant": (lambda loaders: loaders.applicant_by_id, Applicant.from_row, "applicants"),
    "LoanApplication": (
        lambda loaders: loaders.application_by_id,
        LoanApplication.from_row,
        "loan_applications",
    ),
    "LoanProduct": (lambda loaders: loaders.product_by_id, LoanProduct.from_row, "loan_products"),
    "Loan": (lambda loaders: loaders.loan_by_id, Loan.from_row, "loans"),
    "Decision": (lambda loaders: loaders.decision_by_id, Decision.from_row, "decisions"),
    "Installment": (
        lambda loaders: loaders.installment_by_id,
        Installment.from_row,
        "installments",
    ),
    "Payment": (lambda loaders: loaders.payment_by_id, Payment.from_row, "payments"),
}
TABLES = {name: table for name, (_, _, table) in RESOLVERS.items()}


def node_ref(id: str) -> tuple[str, int] | None:
    """(type name, key) of an object ``node(id:)`` can return; None for any other id."""
    parsed = parse_global_id(id)
    return parsed if parsed is not None and parsed[0] in RESOLVERS else None


def node_refs(ids: Sequence[str]) -> list[tuple[str, int] | None]:
    """``node_ref`` of each id, at most 100 of them."""
    if len(ids) > MAX_PAGE_SIZE:
        raise ClientError(f"`ids` takes at most {MAX_PAGE_SIZE} ids.")
    return [node_ref(i) for i in ids]


async def resolve_key(info: Info, type_name: str, key: int) -> Node | None:
    """The ``type_name`` object with primary key ``key``, through the request's loaders."""
    loader_of, view, _ = RESOLVERS[type_name]
    row = await loader_of(info.context.loaders).load(key)
    return view(row) if row is not None else None


async def resolve_node(info: Info, global_id: str) -> Node | None:
    """The object behind ``global_id``, or None when it is malformed or names nothing."""
    ref = node_ref(global_id)
    return await resolve_key(info, *ref) if ref is not None else None


@strawberry.type
class NodeQueries:
    """Root fields that fetch any object by global id."""

    @strawberry.field(
        description="Any object by its global id; null when there is none.",
        permission_classes=[READ],
        metadata=reads(AnyNode(TABLES, node_ref)),
    )
    async def node(
        self,
        info: Info,
        id: GlobalId,
    ) -> Node | None:
        return await resolve_node(info, id)

    @strawberry.field(
        description="Objects by global id in the order asked, null where there is none.",
        permission_classes=[READ],
        metadata=reads(AnyNode(TABLES, node_refs, many=True)),
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[
            list[strawberry.ID], strawberry.argument(description="Global ids, at most 100.")
        ],
    ) -> list[Node | None]:
        refs = node_refs(ids)
        found = await asyncio.gather(*(resolve_key(info, *ref) for ref in refs if ref is not None))
        objects = iter(found)
        return [next(objects) if ref is not None else None for ref in refs]
