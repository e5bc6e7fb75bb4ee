"""The W1 write mix runs few SQL statements per mutation, none of them twice."""

from __future__ import annotations

import re

from bench.writes import APPLY, DECIDE, DISBURSE, PAY
from tests.dbfixtures import gql
from tests.factories import create_product

# Transaction control (BEGIN, COMMIT, ROLLBACK) is not counted, nor the API-key lookup
# (authentication's, not the mutation's). Savepoints would count: there are none, as a refusal
# by a unique index is an ON CONFLICT, not an error to roll back to.
CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK)\b", re.IGNORECASE)

# Per W1 mutation, with its idempotency key (the response included):
# apply    claim key, product, applicant (insert or existing), application, audit + result
# decide   claim key, lock application + its product, decision + status + loan, lock chain,
#          audit + NOTIFY + result
# disburse claim key, lock loan, schedule + status, lock chain, audit + NOTIFY + result,
#          the payload's loan (its payoffAmount is computed from the schedule: a compiled read)
# pay      claim key, lock loan, instalments + live payments, payment, allocations + loan,
#          lock chain, audit + NOTIFY + result
# The audit append is kept until the mutation's work is done, and carries the result stored
# under the key. A payload object whose selection is its own row's columns (apply's, decide's,
# pay's ids) is answered from the row the mutation wrote, without a statement.
EXPECTED = {"apply": 5, "decide": 5, "disburse": 6, "pay": 7}


def counted(statements: list[str]) -> list[str]:
    """The statements a mutation is charged with."""
    return [s for s in statements if not CONTROL.match(s) and "api_keys" not in s]


async def run(client, sql, query, variables):
    sql.statements.clear()
    body = await gql(client, query, variables)
    assert "errors" not in body, body
    payload = next(iter(body["data"].values()))
    assert payload["userErrors"] == [], payload
    return payload, counted(sql.statements)


async def w1_sequence(client, sql) -> dict[str, list[str]]:
    """One agent's W1 sequence (bench/writes.py); the statements of each step."""
    applied, apply_sql = await run(
        client,
        sql,
        APPLY,
        {
            "input": {
                "applicant": {"fullName": "Bench Agent", "email": "w1@example.com"},
                "productCode": "PERSONAL-USD",
                "amount": "12000",
                "termMonths": 24,
                "idempotencyKey": "w1-apply",
            }
        },
    )
    decided, decide_sql = await run(
        client,
        sql,
        DECIDE,
        {
            "input": {
                "applicationId": applied["application"]["id"],
                "outcome": "APPROVED",
                "reason": "Automated approval",
                "idempotencyKey": "w1-decide",
            }
        },
    )
    loan_id = decided["loan"]["id"]
    disbursed, disburse_sql = await run(
        client, sql, DISBURSE, {"input": {"loanId": loan_id, "idempotencyKey": "w1-disburse"}}
    )
    # the schedule the payload was given is the one stored
    fresh = await gql(
        client,
        "query($id: ID!) { node(id: $id) { ... on Loan { payoffAmount } } }",
        {"id": loan_id},
    )
    assert disbursed["loan"]["payoffAmount"] == fresh["data"]["node"]["payoffAmount"]
    _, pay_sql = await run(
        client,
        sql,
        PAY,
        {"input": {"loanId": loan_id, "amount": "500.00", "idempotencyKey": "w1-pay"}},
    )
    return {"apply": apply_sql, "decide": decide_sql, "disburse": disburse_sql, "pay": pay_sql}


async def test_w1_mutations_run_at_most_6_statements_on_average(client, engine, sql):
    # given the W1 product
    await create_product(engine)

    # when one agent runs the W1 sequence, each step with an idempotency key
    statements = await w1_sequence(client, sql)

    # then each step runs exactly the statements it needs
    assert {name: len(s) for name, s in statements.items()} == EXPECTED
    assert sum(EXPECTED.values()) / len(EXPECTED) <= 6
    for name, stmts in statements.items():
        # nothing is read or written twice
        assert len(set(stmts)) == len(stmts), name
        # the chain's head is a row of its own: no advisory lock, no scan of the trail
        assert not [s for s in stmts if "pg_advisory" in s], name
        assert not [s for s in stmts if re.search(r"FROM audit_events\b", s)], name
        # one claim of the key, one stored result: in the audit append
        keys = [s for s in stmts if "idempotency_keys" in s]
        assert len(keys) == 2, name
        assert "INSERT INTO audit_events" in keys[1], name
        assert not [s for s in stmts if "SAVEPOINT" in s.upper()], name


async def test_a_schedule_is_booked_by_one_statement(client, engine, sql):
    await create_product(engine)
    statements = await w1_sequence(client, sql)
    booking = [s for s in statements["disburse"] if "INSERT INTO installments" in s]
    assert len(booking) == 1
    allocating = [s for s in statements["pay"] if "INSERT INTO payment_allocations" in s]
    assert len(allocating) == 1


async def test_the_audit_trail_is_appended_by_one_statement_text_whatever_the_event_count(
    client, engine, sql
):
    # given the W1 sequence, whose steps record one (apply, disburse, pay) or three (an
    # approval: the decision, the loan, the application) audit events
    await create_product(engine)
    statements = await w1_sequence(client, sql)

    # then every step appends its events with the very same statement: compiled once by
    # SQLAlchemy and prepared once per connection (a VALUES list of one row per event was
    # compiled anew on every call, as its text changed with the count)
    appends = {s for step in statements.values() for s in step if "INSERT INTO audit_events" in s}
    assert len(appends) == 1, appends
    # and the rows carry every column: none is left to a default
    assert "unnest(" in next(iter(appends))
