"""How the compiled path shows itself: one statement per read, extensions.compiled, the switch."""

from __future__ import annotations

import re
from datetime import date, timedelta

from bench.queries import OUR_R2
from tests.dbfixtures import gql
from tests.factories import create_application, create_loan, create_product, decide

MIXED = """
query Mixed {
  products: loanProducts { code }
  preview: previewSchedule(input: {productCode: "PERSONAL-USD", amount: "1000", termMonths: 6}) {
    schedule { totalPayable }
  }
  applications(first: 2) { totalCount edges { node { reference } } }
}
"""


async def approved_loans(engine, count: int) -> None:
    await create_product(engine)
    for i in range(count):
        await create_loan(
            engine, email=f"r2-{i}@example.com", disbursed_on=date.today() - timedelta(days=40)
        )


async def test_a_compiled_r2_runs_one_statement_in_total(client, engine, sql):
    # given approved loans with schedules, and a caller whose key the process knows
    await approved_loans(engine, 8)
    await gql(client, "{ __typename }")

    for attempt in ("executor", "short path"):
        # when the benchmark's R2 is asked (first through the executor, then the short path)
        sql.statements.clear()
        body = await gql(client, OUR_R2, {"after": None})

        # then it is answered whole by one statement
        assert "errors" not in body, body
        assert len(body["data"]["applications"]["edges"]) == 8
        assert body["extensions"]["compiled"] == ["applications"], attempt
        assert sql.count == 1, (attempt, sql.statements)


async def test_an_instalments_currency_is_its_loans_already_in_scope(client, engine, sql):
    # given loans with schedules
    await approved_loans(engine, 2)

    # when R2 asks for each instalment's principal, interest and total due
    sql.statements.clear()
    body = await gql(client, OUR_R2, {"after": None})
    assert "errors" not in body, body
    amounts = [
        i["totalDue"]
        for edge in body["data"]["applications"]["edges"]
        for i in edge["node"]["loan"]["schedule"]["installments"]
    ]
    assert amounts

    # then the statement looks no instalment's loan up for its currency: the schedule is read
    # inside its loan, whose currency column the three amounts use (a lookup per amount made
    # PostgreSQL read each loan three times per instalment, one per instalment once)
    (statement,) = sql.statements
    assert not re.search(r"FROM loans (c\d+) WHERE \1\.id = t\d+\.loan_id", statement), statement
    (loan,) = re.findall(r"FROM loans (t\d+) CROSS JOIN LATERAL", statement)
    (instalment,) = re.findall(r"FROM installments (t\d+) CROSS JOIN LATERAL", statement)
    assert f"WHERE {instalment}.loan_id = {loan}.id" in statement
    assert statement.count(f"CASE {loan}.currency WHEN") == 4  # the principal and three amounts


async def test_each_compiled_root_field_runs_one_statement_beside_the_others(client, engine, sql):
    # given a product and applications, and a caller whose key the process knows
    await create_product(engine)
    for i in range(3):
        application = await create_application(engine, email=f"m{i}@example.com")
        await decide(engine, application.id, "REJECTED")
    await gql(client, "{ __typename }")

    # when an operation mixes compiled root fields with one that is not (a preview)
    sql.statements.clear()
    body = await gql(client, MIXED)

    # then each compiled root field ran one statement, the preview its own (the product)
    assert "errors" not in body, body
    assert body["extensions"]["compiled"] == ["products", "applications"]
    assert body["data"]["applications"]["totalCount"] == 3
    assert body["data"]["preview"]["schedule"]["totalPayable"]
    compiled = [s for s in sql.statements if "row_to_json" in s]
    assert len(compiled) == 2, sql.statements
    assert len(sql.statements) == 3, sql.statements


async def test_with_compiled_reads_off_nothing_is_compiled(per_field_client, engine):
    await create_product(engine)
    body = await gql(per_field_client, MIXED)
    assert "errors" not in body, body
    assert "compiled" not in body["extensions"]


async def test_a_request_the_compiled_path_refuses_is_answered_per_field(client, engine):
    # given applications
    await create_product(engine)
    await create_application(engine)
    # when a page is asked with a cursor of another ordering, or too large
    query = (
        "query($after: String, $first: Int) "
        "{ applications(first: $first, after: $after) { totalCount } }"
    )
    foreign = await gql(client, "{ applicants(first: 1) { pageInfo { endCursor } } }")
    cursor = foreign["data"]["applicants"]["pageInfo"]["endCursor"]
    bad_cursor = await gql(client, query, {"after": cursor, "first": 1})
    too_many = await gql(client, query, {"first": 101})
    # then the per-field path reports the error, and nothing claims to be compiled
    assert bad_cursor["errors"][0]["message"].startswith("The cursor was made for another ordering")
    assert too_many["errors"][0]["message"] == "`first` must be between 0 and 100; got 101."
    assert "compiled" not in bad_cursor["extensions"]
    assert "compiled" not in too_many["extensions"]
