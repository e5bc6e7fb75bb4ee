"""Delinquency, overdue instalments and loan filters, as a collections agent sees them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from graph.ids import to_global_id
from lending.clock import today
from tests.dbfixtures import both_paths, gql
from tests.factories import create_loan, create_product, pay

DAY = today()

DELINQUENCY = """
query D($id: ID!, $asOf: Date) {
  loan(id: $id) {
    delinquency(asOf: $asOf) {
      daysPastDue bucket overdueAmount oldestOverdueInstallment { number dueDate }
    }
    payoffAmount(asOf: $asOf)
    schedule { installments { number status(asOf: $asOf) daysPastDue(asOf: $asOf) } }
  }
}
"""

OVERDUE = """
query O($asOf: Date!, $min: Int, $first: Int, $after: String) {
  overdueInstallments(asOf: $asOf, minDaysPastDue: $min, first: $first, after: $after) {
    totalCount
    edges { node { number dueDate daysPastDue(asOf: $asOf) loan { reference } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

LOANS = """
query L($filter: LoanFilterInput) {
  loans(first: 50, filter: $filter) { totalCount edges { node { reference status } } }
}
"""


@pytest.fixture
async def product(engine):
    # 1,200.00 at 0 % over 12 months: every instalment is exactly 100.00
    await create_product(
        engine,
        code="FLAT",
        min_amount=Decimal("100.00"),
        annual_interest_rate=Decimal("0"),
        min_term_months=1,
    )


async def flat_loan(engine, months_ago: int):
    disbursed = DAY - timedelta(days=30 * months_ago + 5)
    return await create_loan(
        engine,
        product_code="FLAT",
        amount="1200.00",
        term_months=12,
        disbursed_on=disbursed,
        first_due_date=disbursed + timedelta(days=30),
    )


async def test_delinquency_follows_the_oldest_unpaid_instalment(client, engine, product):
    loan = await flat_loan(engine, months_ago=3)  # instalments 1-3 are past due
    first_due = loan.disbursed_on + timedelta(days=30)
    gid = to_global_id("Loan", loan.id)
    body = await gql(client, DELINQUENCY, {"id": gid})
    d = body["data"]["loan"]["delinquency"]
    assert d["daysPastDue"] == (DAY - first_due).days
    assert d["bucket"] == "DPD_61_90"
    assert d["overdueAmount"] == "300.00"
    assert d["oldestOverdueInstallment"]["number"] == 1
    statuses = [i["status"] for i in body["data"]["loan"]["schedule"]["installments"]]
    assert statuses[:3] == ["OVERDUE"] * 3
    assert statuses[3:] == ["UPCOMING"] * 9

    # when the first instalment and part of the second are paid today
    await pay(engine, loan.id, "150.00", DAY)
    body = await gql(client, DELINQUENCY, {"id": gid})
    d = body["data"]["loan"]["delinquency"]
    assert d["oldestOverdueInstallment"]["number"] == 2
    assert d["overdueAmount"] == "150.00"
    assert body["data"]["loan"]["payoffAmount"] == "1050.00"

    # and as of yesterday, today's payment did not exist yet
    yesterday = (DAY - timedelta(days=1)).isoformat()
    body = await gql(client, DELINQUENCY, {"id": gid, "asOf": yesterday})
    assert body["data"]["loan"]["delinquency"]["oldestOverdueInstallment"]["number"] == 1
    assert body["data"]["loan"]["payoffAmount"] == "1200.00"


async def test_a_prepaid_loan_is_current(client, engine, product):
    loan = await flat_loan(engine, months_ago=1)
    await pay(engine, loan.id, "450.00", DAY)  # covers four and a half instalments
    body = await gql(client, DELINQUENCY, {"id": to_global_id("Loan", loan.id)})
    loan_view = body["data"]["loan"]
    assert loan_view["delinquency"] == {
        "daysPastDue": 0,
        "bucket": "CURRENT",
        "overdueAmount": "0.00",
        "oldestOverdueInstallment": None,
    }
    statuses = [i["status"] for i in loan_view["schedule"]["installments"]]
    assert statuses[:4] == ["PAID"] * 4
    assert statuses[4] == "PARTIALLY_PAID"


async def test_overdue_installments_most_overdue_first(client, engine, product):
    old = await flat_loan(engine, months_ago=4)
    recent = await flat_loan(engine, months_ago=1)
    await flat_loan(engine, months_ago=0)  # nothing due yet
    seen, after = [], None
    while True:
        body = await gql(client, OVERDUE, {"asOf": DAY.isoformat(), "first": 2, "after": after})
        conn = body["data"]["overdueInstallments"]
        seen += [e["node"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert conn["totalCount"] == 5
    days = [n["daysPastDue"] for n in seen]
    assert days == sorted(days, reverse=True)
    assert [n["loan"]["reference"] for n in seen].count(old.reference) == 4
    assert [n["loan"]["reference"] for n in seen].count(recent.reference) == 1
    # only those at least 60 days late
    body = await gql(client, OVERDUE, {"asOf": DAY.isoformat(), "min": 60})
    assert all(e["node"]["daysPastDue"] >= 60 for e in body["data"]["overdueInstallments"]["edges"])
    assert body["data"]["overdueInstallments"]["totalCount"] == 2


COUNTED = """
query C($asOf: Date!, $n: Int) {
  overdueInstallments(asOf: $asOf, first: 1) {
    totalCount bounded: totalCount(atMost: $n) edges { node { number } }
  }
}
"""

LATE = """
query L($asOf: Date!) {
  overdueInstallments(asOf: $asOf) { totalCount edges { node { number daysPastDue(asOf: $asOf) } } }
}
"""


async def test_a_count_stops_at_at_most_on_both_paths(client, per_field_client, engine, product):
    await flat_loan(engine, months_ago=4)  # four instalments overdue
    day = DAY.isoformat()
    for at_most, counted in ((2, 2), (4, 4), (9, 4), (0, 0), (None, 4)):
        body = await both_paths(client, per_field_client, COUNTED, {"asOf": day, "n": at_most})
        found = body["data"]["overdueInstallments"]
        assert (found["totalCount"], found["bounded"]) == (4, counted)
    refused = await both_paths(client, per_field_client, COUNTED, {"asOf": day, "n": -1})
    assert refused["errors"][0]["message"] == "`atMost` must be 0 or more; got -1."


async def test_an_instalment_paid_late_was_overdue_until_then(
    client, per_field_client, engine, product
):
    loan = await flat_loan(engine, months_ago=3)  # instalments 1-3 are past due
    await pay(engine, loan.id, "100.00", DAY - timedelta(days=2))  # settles the first
    numbers = {}
    for back in (3, 2):
        day = (DAY - timedelta(days=back)).isoformat()
        body = await both_paths(client, per_field_client, LATE, {"asOf": day})
        found = body["data"]["overdueInstallments"]
        numbers[back] = [e["node"]["number"] for e in found["edges"]]
        assert found["totalCount"] == len(numbers[back])
    assert numbers == {3: [1, 2, 3], 2: [2, 3]}


async def test_loans_filter_by_delinquency_bucket(client, engine, product):
    current = await flat_loan(engine, months_ago=0)
    late = await flat_loan(engine, months_ago=1)
    very_late = await flat_loan(engine, months_ago=4)
    approved = await create_loan(engine, product_code="FLAT", amount="1200.00")

    async def references(filter_):
        body = await gql(client, LOANS, {"filter": filter_})
        assert "errors" not in body, body
        return {e["node"]["reference"] for e in body["data"]["loans"]["edges"]}

    assert await references({"delinquencyBucket": ["CURRENT"]}) == {current.reference}
    assert await references({"delinquencyBucket": ["DPD_1_30"]}) == {late.reference}
    assert await references({"delinquencyBucket": ["DPD_91_PLUS", "DPD_1_30"]}) == {
        late.reference,
        very_late.reference,
    }
    assert await references({"status": ["APPROVED"]}) == {approved.reference}
    assert len(await references(None)) == 4
    # a month ago, the late loan was not late yet
    month_ago = (DAY - timedelta(days=30)).isoformat()
    assert late.reference in await references({"delinquencyBucket": ["CURRENT"], "asOf": month_ago})


@pytest.mark.parametrize("path", ["compiled", "per field"])
async def test_an_empty_bucket_list_matches_no_loan(
    client, per_field_client, engine, product, path
):
    # given an active loan (current) and one 91+ days late
    await flat_loan(engine, months_ago=1)
    await flat_loan(engine, months_ago=6)
    # when loans are filtered by an empty list of buckets, like an empty list of statuses
    body = await gql(
        client if path == "compiled" else per_field_client,
        LOANS,
        {"filter": {"delinquencyBucket": []}},
    )
    # then none matches
    assert body["data"]["loans"]["totalCount"] == 0


# One loan reached twice: its payments' count is one load, shared by both. The refused count
# beside the first one makes the executor cancel the first one's wait; the second one's must
# still be answered, not cancelled with it.
SHARED_COUNT = """
query S($id: ID!) {
  first: loan(id: $id) { payments { totalCount } refused: payments { totalCount(atMost: -1) } }
  second: loan(id: $id) { payments { totalCount } }
}
"""


async def test_a_refused_count_cancels_no_other_fields_wait(
    client, per_field_client, engine, product
):
    loan = await flat_loan(engine, months_ago=2)
    await pay(engine, loan.id, "100.00", DAY - timedelta(days=3))
    body = await both_paths(
        client, per_field_client, SHARED_COUNT, {"id": to_global_id("Loan", loan.id)}
    )
    assert body["data"] == {"first": None, "second": {"payments": {"totalCount": 1}}}
    assert body["errors"][0]["message"] == "`atMost` must be 0 or more; got -1."
