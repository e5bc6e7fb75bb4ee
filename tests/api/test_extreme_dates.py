"""Dates at the ends of the calendar are bad input or plain answers, never a server error."""

from __future__ import annotations

from datetime import timedelta

import pytest

from graph.ids import to_global_id
from lending.clock import today
from tests.dbfixtures import gql
from tests.factories import create_loan, create_product

PREVIEW = """
query Preview($input: SchedulePreviewInput!) {
  previewSchedule(input: $input) {
    schedule { maturityDate }
    userErrors { code field }
  }
}
"""

OVERDUE = """
query O($asOf: Date!, $min: Int) {
  overdueInstallments(asOf: $asOf, minDaysPastDue: $min) { totalCount edges { cursor } }
}
"""

BUCKETS = """
query B($asOf: Date) {
  loans(filter: {delinquencyBucket: [CURRENT, DPD_91_PLUS], asOf: $asOf}) { totalCount }
}
"""

LOAN = """
query L($id: ID!, $asOf: Date) {
  node(id: $id) { ... on Loan {
    payoffAmount(asOf: $asOf)
    delinquency(asOf: $asOf) { daysPastDue bucket }
    schedule { installments { status(asOf: $asOf) daysPastDue(asOf: $asOf) } }
  } }
}
"""


@pytest.mark.parametrize(
    ("dates", "field"),
    [
        ({"disbursedOn": "9999-12-01"}, "disbursedOn"),
        ({"disbursedOn": "9999-10-01", "firstDueDate": "9999-12-31"}, "disbursedOn"),
        ({"firstDueDate": "0001-01-01"}, "firstDueDate"),
    ],
)
async def test_a_schedule_past_the_calendar_is_a_validation_error(client, engine, dates, field):
    # given a product
    await create_product(engine)
    # when a schedule would run past 9999-12-31, or start before the calendar does
    body = await gql(
        client,
        PREVIEW,
        {"input": {"productCode": "PERSONAL-USD", "amount": "5000", "termMonths": 12} | dates},
    )
    # then it is refused as bad input on that field
    assert "errors" not in body, body
    assert body["data"]["previewSchedule"]["userErrors"] == [
        {"code": "VALIDATION_FAILED", "field": ["input", field]}
    ]


@pytest.mark.parametrize(
    ("as_of", "minimum"),
    [("0001-01-01", 0), ("0001-01-01", 1), ("2026-01-01", 2**31 - 1), ("9999-12-31", 0)],
)
async def test_overdue_installments_at_the_ends_of_the_calendar(client, engine, as_of, minimum):
    # given an active loan with instalments
    await create_product(engine)
    await create_loan(engine, disbursed_on=today() - timedelta(days=100))
    body = await gql(client, OVERDUE, {"asOf": as_of, "min": minimum})
    assert "errors" not in body, body
    if as_of == "0001-01-01" or minimum == 2**31 - 1:
        assert body["data"]["overdueInstallments"]["totalCount"] == 0


@pytest.mark.parametrize("as_of", ["0001-01-01", "9999-12-31"])
async def test_loan_figures_at_the_ends_of_the_calendar(client, engine, as_of):
    await create_product(engine)
    loan = await create_loan(engine, disbursed_on=today() - timedelta(days=100))
    body = await gql(client, LOAN, {"id": to_global_id("Loan", loan.id), "asOf": as_of})
    assert "errors" not in body, body
    figures = body["data"]["node"]
    statuses = {i["status"] for i in figures["schedule"]["installments"]}
    if as_of == "0001-01-01":  # before anything fell due
        assert figures["delinquency"] == {"daysPastDue": 0, "bucket": "CURRENT"}
        assert statuses == {"UPCOMING"}
    else:  # everything long overdue and unpaid
        assert figures["delinquency"]["bucket"] == "DPD_91_PLUS"
        assert statuses == {"OVERDUE"}


@pytest.mark.parametrize("as_of", ["0001-01-01", "9999-12-31"])
async def test_delinquency_buckets_at_the_ends_of_the_calendar(client, engine, as_of):
    # given an active loan with instalments
    await create_product(engine)
    await create_loan(engine, disbursed_on=today() - timedelta(days=100))
    # when loans are filtered by bucket on the first or last day of the calendar
    body = await gql(client, BUCKETS, {"asOf": as_of})
    # then the loan is current before anything fell due, and 91+ days late at the end
    assert "errors" not in body, body
    assert body["data"]["loans"]["totalCount"] == 1


@pytest.mark.parametrize("as_of", ["0001-01-01", "9999-12-31"])
async def test_delinquency_buckets_at_the_ends_of_the_calendar_per_field(
    per_field_client, engine, as_of
):
    await create_product(engine)
    await create_loan(engine, disbursed_on=today() - timedelta(days=100))
    body = await gql(per_field_client, BUCKETS, {"asOf": as_of})
    assert "errors" not in body, body
    assert body["data"]["loans"]["totalCount"] == 1


@pytest.mark.parametrize(
    "instant", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "10000-01-01T00:00:00Z"]
)
async def test_an_instant_beyond_the_calendar_in_utc_is_bad_input_on_both_paths(
    client, per_field_client, instant
):
    query = """query($at: DateTime) {
      applicants(filter: {createdFrom: $at}) { totalCount }
      applications(filter: {submittedTo: $at}) { totalCount } }"""
    for asking in (client, per_field_client):
        body = await gql(asking, query, {"at": instant})
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", body
        assert (
            "within years 1 to 9999 in UTC" in error["message"]
            or "cannot represent" in (error["message"])
        )


@pytest.mark.parametrize("literal", ["-1093356", '"9999-12-31T23:59:59-14:00"', "true"])
async def test_a_datetime_literal_that_is_not_one_is_a_client_error(client, literal):
    body = await gql(
        client, f"{{ applicants(filter: {{createdFrom: {literal}}}) {{ totalCount }} }}"
    )
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", body
