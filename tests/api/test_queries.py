"""Root queries: keyset pagination, filters, ordering, node lookups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from graph.ids import to_global_id
from tests.dbfixtures import both_paths, gql
from tests.factories import create_application, create_product, decide

PAGE = """
query Page($first: Int, $after: String, $filter: ApplicationFilterInput,
           $orderBy: ApplicationOrder) {
  applications(first: $first, after: $after, filter: $filter, orderBy: $orderBy) {
    totalCount
    edges { cursor node { reference amountRequested status applicant { email } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def applications(engine):
    """Eight applications with distinct amounts and submission times, one hour apart."""
    await create_product(engine)
    await create_product(engine, code="BIZ-USD", max_amount="250000.00")
    rows = []
    for i in range(8):
        rows.append(
            await create_application(
                engine,
                email=f"p{i}@example.com",
                amount=f"{1000 * (i + 2)}.00",
                product_code="BIZ-USD" if i % 2 else "PERSONAL-USD",
                submitted_at=T0 + timedelta(hours=i),
            )
        )
    await decide(engine, rows[0].id, "REJECTED")
    await decide(engine, rows[1].id, "REFERRED")
    return rows


async def walk(client, variables, first=3):
    seen, after = [], None
    while True:
        body = await gql(client, PAGE, {**variables, "first": first, "after": after})
        assert "errors" not in body, body
        conn = body["data"]["applications"]
        seen += [e["node"]["reference"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            return seen, conn["totalCount"]
        after = conn["pageInfo"]["endCursor"]


async def test_pages_cover_everything_once_newest_first(client, applications):
    seen, total = await walk(client, {})
    assert seen == [a.reference for a in reversed(applications)]
    assert total == 8


async def test_order_by_amount_ascending(client, applications):
    seen, _ = await walk(client, {"orderBy": {"field": "AMOUNT_REQUESTED", "direction": "ASC"}})
    assert seen == [a.reference for a in applications]


async def test_pages_are_stable_under_inserts(client, engine, applications):
    body = await gql(client, PAGE, {"first": 3, "orderBy": {"direction": "ASC"}})
    conn = body["data"]["applications"]
    assert conn["pageInfo"]["hasPreviousPage"] is False
    # a new application submitted before the cursor must not shift the next page
    await create_application(engine, email="late@example.com", submitted_at=T0 - timedelta(days=1))
    after = conn["pageInfo"]["endCursor"]
    body = await gql(client, PAGE, {"first": 3, "after": after, "orderBy": {"direction": "ASC"}})
    page = body["data"]["applications"]
    assert [e["node"]["reference"] for e in page["edges"]] == [
        a.reference for a in applications[3:6]
    ]
    assert page["pageInfo"]["hasPreviousPage"] is True


async def test_a_cursor_only_works_with_its_ordering(client, applications):
    body = await gql(client, PAGE, {"first": 1})
    cursor = body["data"]["applications"]["pageInfo"]["endCursor"]
    body = await gql(client, PAGE, {"after": cursor, "orderBy": {"field": "AMOUNT_REQUESTED"}})
    assert "another ordering" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({"status": ["SUBMITTED"]}, [7, 6, 5, 4, 3, 2]),
        ({"status": ["REJECTED", "IN_REVIEW"]}, [1, 0]),
        ({"productCode": "BIZ-USD"}, [7, 5, 3, 1]),
        ({"applicantEmail": "P3@EXAMPLE.COM"}, [3]),
        ({"amountMin": "5000", "amountMax": "7000.00"}, [5, 4, 3]),
        (
            {"submittedFrom": "2026-01-01T02:00:00+00:00", "submittedTo": "2026-01-01T04:00:00Z"},
            [3, 2],
        ),
        ({"status": ["SUBMITTED"], "productCode": "PERSONAL-USD"}, [6, 4, 2]),
        ({"productCode": "NOPE"}, []),
    ],
)
async def test_filters(client, applications, filter_, expected):
    seen, total = await walk(client, {"filter": filter_})
    assert seen == [applications[i].reference for i in expected]
    assert total == len(expected)


async def test_first_zero_gives_only_the_count(client, applications):
    body = await gql(client, PAGE, {"first": 0})
    conn = body["data"]["applications"]
    assert conn["edges"] == []
    assert conn["totalCount"] == 8
    assert conn["pageInfo"]["hasNextPage"] is True


async def test_applicants_filters_and_order(client, applications):
    query = """
    query($filter: ApplicantFilterInput, $orderBy: ApplicantOrder) {
      applicants(first: 3, filter: $filter, orderBy: $orderBy) {
        totalCount edges { node { email } } } }
    """
    body = await gql(client, query, {"orderBy": {"direction": "DESC"}})
    assert [e["node"]["email"] for e in body["data"]["applicants"]["edges"]] == [
        "p7@example.com",
        "p6@example.com",
        "p5@example.com",
    ]
    body = await gql(client, query, {"filter": {"email": "P2@example.com"}})
    assert body["data"]["applicants"]["totalCount"] == 1
    body = await gql(client, query, {"filter": {"nameContains": "%"}})
    assert body["data"]["applicants"]["totalCount"] == 0  # % is literal, not a wildcard


async def test_node_and_nodes(client, engine, applications):
    decided = await decide(engine, applications[2].id, "APPROVED")
    ids = {
        "LoanApplication": to_global_id("LoanApplication", applications[2].id),
        "Applicant": to_global_id("Applicant", applications[2].applicant_id),
        "LoanProduct": to_global_id("LoanProduct", applications[2].product_id),
        "Decision": to_global_id("Decision", decided.decision.id),
        "Loan": to_global_id("Loan", decided.loan.id),
    }
    query = """
    query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }
    """
    missing = [to_global_id("Loan", 999), to_global_id("Nope", 1)]
    body = await gql(client, query, {"ids": [*ids.values(), *missing]})
    nodes = body["data"]["nodes"]
    assert [n["__typename"] for n in nodes[:5]] == list(ids)
    assert [n["id"] for n in nodes[:5]] == list(ids.values())
    assert nodes[5:] == [None, None]
    one = await gql(
        client,
        "query($id: ID!) { node(id: $id) { ... on Loan { principal } } }",
        {"id": ids["Loan"]},
    )
    assert one["data"]["node"] == {"principal": "4000.00"}


async def test_typed_lookups_return_null_for_other_types(client, applications):
    gid = to_global_id("Applicant", applications[0].applicant_id)
    body = await gql(
        client,
        "query($id: ID!) { application(id: $id) { id } loan(id: $id) { id } "
        "applicant(id: $id) { email } }",
        {"id": gid},
    )
    assert body["data"] == {
        "application": None,
        "loan": None,
        "applicant": {"email": "p0@example.com"},
    }


async def test_nodes_takes_at_most_100_ids(client):
    body = await gql(
        client, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ["x"] * 101}
    )
    assert "at most 100" in body["errors"][0]["message"]


async def test_errors_are_listed_in_the_documents_order_on_both_paths(
    client, per_field_client, applications
):
    # given two root fields that both fail: the first only after its applicant was read, the
    # second at once (field by field, the second failed first and was listed first; the
    # differential tests once met both orders for one request)
    applicant = to_global_id("Applicant", applications[0].applicant_id)
    query = """query Two($id: ID!) {
      first: applicant(id: $id) { applications(first: 1, after: "garbage") { totalCount } }
      second: applicant(id: "garbage") { id }
    }"""
    # when it is asked on each path
    answer = await both_paths(client, per_field_client, query, {"id": applicant})
    # then the errors follow the fields in the document
    assert [error["path"] for error in answer["errors"]] == [
        ["first", "applications"],
        ["second"],
    ]
