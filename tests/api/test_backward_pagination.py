"""Backward pagination: `last` / `before` walk a connection from its end, on both read paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.dbfixtures import gql
from tests.factories import create_application, create_product, decide

ROOT_PAGE = """
query RootPage($first: Int, $after: String, $last: Int, $before: String) {
  applicants(first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { email } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

NESTED_PAGE = """
query NestedPage($email: String!, $first: Int, $after: String, $last: Int, $before: String) {
  applicants(filter: {email: $email}) { edges { node {
    applications(first: $first, after: $after, last: $last, before: $before) {
      totalCount
      edges { cursor node { reference } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  } } }
}
"""

NESTED_LAST = """
query NestedLast($last: Int!) {
  applicants(last: $last) {
    edges { node {
      email
      applications(last: 2) { totalCount edges { cursor node { reference status } } }
    } }
    pageInfo { hasPreviousPage startCursor }
  }
}
"""

BOTH_ENDS = "{ applicants(first: 1, last: 1) { edges { cursor } } }"
TOO_MANY = "{ applicants(last: 101) { edges { cursor } } }"

SIZE = 5
ITEMS = 12
BORROWER = "walker@example.com"


async def seed_applicants(engine: Any, count: int = ITEMS) -> None:
    await create_product(engine)
    for i in range(count):
        await create_application(engine, email=f"a{i:02}@example.com")


async def seed_applications(engine: Any, count: int = ITEMS) -> None:
    """``count`` applications of one borrower (all but the newest rejected), an hour apart."""
    await create_product(engine)
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    for i in range(count):
        submitted = start + timedelta(hours=i)
        made = await create_application(engine, email=BORROWER, submitted_at=submitted)
        if i < count - 1:
            await decide(engine, made.id, "REJECTED", decided_at=submitted + timedelta(minutes=5))


async def read_page(
    client: httpx.AsyncClient, path: str, query: str, variables: dict[str, Any], nested: bool
) -> dict[str, Any]:
    """The connection a page query answers, checked to have run on ``path``."""
    body = await gql(client, query, variables)
    assert "errors" not in body, body
    compiled = ["applicants"] if path == "compiled" else None
    assert body["extensions"].get("compiled") == compiled, body
    conn: dict[str, Any] = body["data"]["applicants"]
    if nested:
        conn = conn["edges"][0]["node"]["applications"]
    return conn


async def walk(
    client: httpx.AsyncClient, path: str, nested: bool, backward: bool
) -> tuple[list[list[str]], list[tuple[bool, bool]]]:
    """Every page of the connection with its (hasPreviousPage, hasNextPage), in walk order.

    Items are written as ``cursor`` (unique per row and ordering).
    """
    query = NESTED_PAGE if nested else ROOT_PAGE
    pages: list[list[str]] = []
    flags: list[tuple[bool, bool]] = []
    cursor: str | None = None
    while True:
        variables: dict[str, Any] = {"email": BORROWER} if nested else {}
        if backward:
            variables |= {"last": SIZE, "before": cursor}
        else:
            variables |= {"first": SIZE, "after": cursor}
        conn = await read_page(client, path, query, variables, nested)
        assert conn["totalCount"] == ITEMS
        cursors = [edge["cursor"] for edge in conn["edges"]]
        info = conn["pageInfo"]
        pages.append(cursors)
        flags.append((info["hasPreviousPage"], info["hasNextPage"]))
        assert (info["startCursor"], info["endCursor"]) == (cursors[0], cursors[-1])
        more = info["hasPreviousPage"] if backward else info["hasNextPage"]
        if not more:
            return pages, flags
        cursor = info["startCursor"] if backward else info["endCursor"]
        assert len(pages) < ITEMS, "the walk does not end"


def client_for(path: str, client: httpx.AsyncClient, per_field: httpx.AsyncClient) -> Any:
    return client if path == "compiled" else per_field


@pytest.mark.parametrize("nested", [False, True], ids=["root", "nested"])
@pytest.mark.parametrize("path", ["per field", "compiled"])
async def test_walking_backward_meets_the_forward_walk_in_reverse(
    client, per_field_client, engine, path, nested
):
    # given twelve applicants (oldest first), or one borrower's twelve applications (newest first)
    await (seed_applications(engine) if nested else seed_applicants(engine))
    served = client_for(path, client, per_field_client)

    # when the connection is walked forward with first: 5, then backward with last: 5
    forward, forward_flags = await walk(served, path, nested, backward=False)
    backward, backward_flags = await walk(served, path, nested, backward=True)

    # then each page is in the connection's order, and the backward walk read from its end
    # meets every item of the forward walk, in reverse
    assert [len(page) for page in forward] == [5, 5, 2]
    assert [len(page) for page in backward] == [5, 5, 2]
    forward_items = [item for page in forward for item in page]
    backward_items = [item for page in backward for item in reversed(page)]
    assert len(set(forward_items)) == ITEMS
    assert backward_items[::-1] == forward_items
    assert [item for page in reversed(backward) for item in page] == forward_items
    # (hasPreviousPage, hasNextPage): forward, `after` given means items precede; backward,
    # `before` given means items follow
    assert forward_flags == [(False, True), (True, True), (True, False)]
    assert backward_flags == [(True, False), (True, True), (False, True)]


@pytest.mark.parametrize("path", ["per field", "compiled"])
async def test_a_page_between_after_and_before_is_read_from_either_end(
    client, per_field_client, engine, path
):
    # given twelve applicants, and the cursors of the third and the tenth
    await seed_applicants(engine)
    served = client_for(path, client, per_field_client)
    everything = await read_page(served, path, ROOT_PAGE, {"first": ITEMS}, nested=False)
    cursors = [edge["cursor"] for edge in everything["edges"]]
    window = {"after": cursors[2], "before": cursors[9]}  # six items between them

    # when pages of the window are read from its start and from its end
    head = await read_page(served, path, ROOT_PAGE, {**window, "first": 3}, nested=False)
    tail = await read_page(served, path, ROOT_PAGE, {**window, "last": 3}, nested=False)
    whole = await read_page(served, path, ROOT_PAGE, {**window, "last": 10}, nested=False)

    # then each holds the items at its end of the window, in the connection's order
    assert [e["cursor"] for e in head["edges"]] == cursors[3:6]
    assert [e["cursor"] for e in tail["edges"]] == cursors[6:9]
    assert [e["cursor"] for e in whole["edges"]] == cursors[3:9]
    flags = [(c["pageInfo"]["hasPreviousPage"], c["pageInfo"]["hasNextPage"]) for c in (head, tail)]
    assert flags == [(True, True), (True, True)]
    assert (whole["pageInfo"]["hasPreviousPage"], whole["pageInfo"]["hasNextPage"]) == (False, True)
    assert whole["totalCount"] == ITEMS


@pytest.mark.parametrize("path", ["per field", "compiled"])
async def test_first_with_last_and_last_over_100_are_refused(
    client, per_field_client, engine, path
):
    # given a caller of either path
    served = client_for(path, client, per_field_client)

    # when a page asks for both ends, or for 101 items from the end
    both = await gql(served, BOTH_ENDS)
    too_many = await gql(served, TOO_MANY)

    # then both are client errors that say why
    assert both["data"] is None
    assert both["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "`first` or `last`, not both" in both["errors"][0]["message"]
    assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "`last` must be between 0 and 100" in too_many["errors"][0]["message"]


@pytest.mark.parametrize("path", ["per field", "compiled"])
async def test_backward_pages_run_as_many_statements_whatever_their_size(
    client, per_field_client, engine, sql, path
):
    # given 60 applicants, each with two applications (the older one rejected)
    await create_product(engine)
    for i in range(60):
        older = await create_application(engine, email=f"p{i}@example.com")
        await decide(engine, older.id, "REJECTED")
        await create_application(engine, email=f"p{i}@example.com")
    served = client_for(path, client, per_field_client)
    await gql(served, "{ __typename }")  # the API key is known from now on

    # when the last 2 and then the last 50 applicants are read with their last applications
    counts, bodies = [], []
    for last in (2, 50):
        sql.statements.clear()
        bodies.append(await gql(served, NESTED_LAST, {"last": last}))
        counts.append(sql.count)

    # then both answer fully, the newest applicants in order, with the same statement count
    small, large = bodies
    assert "errors" not in large, large
    edges = large["data"]["applicants"]["edges"]
    assert [e["node"]["email"] for e in edges] == [f"p{i}@example.com" for i in range(10, 60)]
    assert [e["node"]["email"] for e in small["data"]["applicants"]["edges"]] == [
        "p58@example.com",
        "p59@example.com",
    ]
    assert all(e["node"]["applications"]["totalCount"] == 2 for e in edges)
    assert all(
        [a["node"]["status"] for a in e["node"]["applications"]["edges"]]
        == ["SUBMITTED", "REJECTED"]  # newest first, as the connection is ordered
        for e in edges
    )
    assert large["data"]["applicants"]["pageInfo"]["hasPreviousPage"] is True
    assert counts[0] == counts[1], sql.statements
    if path == "compiled":
        assert counts == [1, 1], sql.statements
    else:
        # applicants page, applications page and count (one each): nothing per row
        assert counts == [3, 3], sql.statements
