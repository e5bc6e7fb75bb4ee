"""`node(id:)` and `nodes(ids:)`: any object by its global id, through its own type's loader."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated

import strawberry

import graph.types  # noqa: F401 - every type node(id:) can return
from graph.compiled.reads import AnyNode, reads
from graph.context import Info
from graph.errors import ClientError
from graph.ids import read_id
from graph.permissions import READ
from graph.relay import MAX_PAGE_SIZE, GlobalId, Node, RowView
from graph.scope import visible

# The table of every Node type by its GraphQL name (graph.types has imported them all).
TABLES = {
    view.__strawberry_definition__.name: view.TABLE  # type: ignore[attr-defined]
    for view in RowView._by_table.values()
    if issubclass(view, Node)
}


def node_ref(id: str, argument: str = "id") -> tuple[str, int] | None:
    """(type name, key) of an object ``node(id:)`` can return; None for the id of any other
    type, BAD_USER_INPUT for text that is not an id."""
    parsed = read_id(id, argument)
    return parsed if parsed[0] in TABLES else None


def node_refs(ids: Sequence[str]) -> list[tuple[str, int] | None]:
    """``node_ref`` of each id, at most 100 of them."""
    if len(ids) > MAX_PAGE_SIZE:
        raise ClientError(f"`ids` takes at most {MAX_PAGE_SIZE} ids.")
    return [node_ref(i, "ids") for i in ids]


async def load_node(info: Info, ref: tuple[str, int] | None) -> Node | None:
    """The object a reference names, through its type's loader (None for None)."""
    view = RowView.named(ref[0]) if ref else None
    found = await view.load(info.context.loaders, ref[1]) if view and ref else None
    return await visible(info, found)


@strawberry.type
class NodeQueries:
    @READ.field(
        "Any object by its global id; null when there is none.",
        metadata=reads(AnyNode(TABLES, node_ref)),
    )
    async def node(self, info: Info, id: GlobalId) -> Node | None:
        return await load_node(info, node_ref(id))

    @READ.field(
        "Objects by global id in the order asked, null where there is none.",
        metadata=reads(AnyNode(TABLES, node_refs, many=True)),
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[
            list[strawberry.ID], strawberry.argument(description="Global ids, at most 100.")
        ],
    ) -> list[Node | None]:
        return list(await asyncio.gather(*(load_node(info, ref) for ref in node_refs(ids))))
