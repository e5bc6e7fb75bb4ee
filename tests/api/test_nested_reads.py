"""Nested reads: one round trip, a statement count independent of the page size."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.dbfixtures import gql
from tests.factories import create_application, create_loan, create_product, decide, pay

NESTED = """
query Nested($first: Int!) {
  applicants(first: $first) {
    totalCount
    edges { cursor node {
      id fullName email
      applications(first: 10) {
        totalCount
        edges { node {
          reference status availableActions
          product { code currency }
          applicant { email }
          decisions { outcome reason decidedBy application { reference } }
          latestDecision { outcome }
          loan { reference status principal application { reference } applicant { fullName } }
        } }
      }
    } }
  }
}
"""


async def seed(engine, applicants: int) -> None:
    await create_product(engine)
    await create_product(engine, code="BIZ-USD", max_amount="250000.00")
    for i in range(applicants):
        email = f"person{i}@example.com"
        first = await create_application(engine, email=email, full_name=f"Person {i}")
        await decide(engine, first.id, "REFERRED")
        await decide(engine, first.id, "APPROVED" if i % 2 else "REJECTED")
        await create_application(
            engine, email=email, full_name=f"Person {i}", product_code="BIZ-USD"
        )


@pytest.mark.parametrize("path", ["per field", "compiled"])
async def test_statement_count_does_not_grow_with_page_size(
    client, per_field_client, engine, sql, path
):
    # given 60 applicants, each with two applications, decisions and (for half) a loan
    await seed(engine, 60)

    # when the nested query asks for 5 and then for 50 applicants
    client = client if path == "compiled" else per_field_client
    await gql(client, "{ __typename }")  # the API key is known from now on
    sql.statements.clear()
    small = await gql(client, NESTED, {"first": 5})
    small_count = sql.count
    sql.statements.clear()
    large = await gql(client, NESTED, {"first": 50})
    large_count = sql.count

    # then both answer fully and run the same number of statements
    assert "errors" not in small
    assert "errors" not in large
    assert len(small["data"]["applicants"]["edges"]) == 5
    edges = large["data"]["applicants"]["edges"]
    assert len(edges) == 50
    assert all(e["node"]["applications"]["totalCount"] == 2 for e in edges)
    loans = [
        a["node"]["loan"]
        for e in edges
        for a in e["node"]["applications"]["edges"]
        if a["node"]["loan"]
    ]
    assert len(loans) == 25
    assert small_count == large_count
    if path == "compiled":  # one statement builds the whole answer
        assert large_count == 1, sql.statements
    else:
        # applicants page + count, applications page + count, products, applicants (nested),
        # decisions, loans, applications (under decisions and loans): nothing per row.
        assert large_count <= 10, sql.statements


async def test_nested_applications_paginate_per_applicant(client, engine):
    await create_product(engine)
    application = await create_application(engine, email="pager@example.com")
    await decide(engine, application.id, "REJECTED")
    await create_application(engine, email="pager@example.com")
    query = """
    query($after: String) { applicants(first: 1) { edges { node {
      applications(first: 1, after: $after) {
        edges { cursor node { status } } pageInfo { hasNextPage endCursor }
      } } } } }
    """
    first = await gql(client, query, {"after": None})
    page = first["data"]["applicants"]["edges"][0]["node"]["applications"]
    assert [e["node"]["status"] for e in page["edges"]] == ["SUBMITTED"]  # newest first
    assert page["pageInfo"]["hasNextPage"] is True
    second = await gql(client, query, {"after": page["pageInfo"]["endCursor"]})
    page = second["data"]["applicants"]["edges"][0]["node"]["applications"]
    assert [e["node"]["status"] for e in page["edges"]] == ["REJECTED"]
    assert page["pageInfo"]["hasNextPage"] is False


# Pages small enough for the cost limit, which counts every plain list by its longest possible
# length (a payment's allocations: 2,600): 30 borrowers come to about 390,000 nodes.
DEEP = """
query Deep($first: Int!) {
  applicants(first: $first) {
    edges { node {
      applications(first: 1) { edges { node {
        reference
        loan {
          status payoffAmount outstandingPrincipal availableActions
          delinquency { daysPastDue bucket overdueAmount oldestOverdueInstallment { number } }
          schedule { totalPayable installments {
            number dueDate totalDue principalPaid interestPaid amountOutstanding paidOn status
          } }
          payments(first: 2) { totalCount edges { node {
            amount receivedOn reversed
            allocations { principal interest installment { number dueDate } }
            loan { reference }
          } } }
        }
      } } }
      loans(first: 5) { totalCount edges { node { reference } } }
    } }
  }
}
"""


@pytest.mark.parametrize("path", ["per field", "compiled"])
async def test_deep_servicing_reads_do_not_grow_with_page_size(
    client, per_field_client, engine, sql, path
):
    # given 30 borrowers with disbursed loans, payments (one reversed) and arrears
    await create_product(engine)
    today = date.today()
    for i in range(30):
        loan = await create_loan(
            engine,
            email=f"borrower{i}@example.com",
            amount="6000.00",
            term_months=12,
            disbursed_on=today - timedelta(days=100),
        )
        await pay(engine, loan.id, "600.00", today - timedelta(days=60))
        await pay(engine, loan.id, "100.00", today - timedelta(days=20), reference=f"R{i}")

    # when the deep query asks for 3 and then for 30 borrowers
    client = client if path == "compiled" else per_field_client
    await gql(client, "{ __typename }")
    sql.statements.clear()
    small = await gql(client, DEEP, {"first": 3})
    small_count = sql.count
    sql.statements.clear()
    large = await gql(client, DEEP, {"first": 30})

    # then everything resolves and the statement count is the same
    assert "errors" not in small
    assert "errors" not in large, large
    edges = large["data"]["applicants"]["edges"]
    assert len(edges) == 30
    loan = edges[0]["node"]["applications"]["edges"][0]["node"]["loan"]
    assert loan["payments"]["totalCount"] == 2
    assert len(loan["schedule"]["installments"]) == 12
    assert loan["delinquency"]["bucket"] != "CURRENT"
    assert sql.count == small_count, sql.statements
    if path == "compiled":
        assert small_count == 1, sql.statements
