"""The audit trail: one hash-chained event per change, append-only, verifiable."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from db.session import create_sessionmaker
from graph.ids import to_global_id
from lending.clock import today
from lending.services import audit as audit_service
from tests.api.operations import APPLY, DECIDE, apply_input
from tests.dbfixtures import gql
from tests.factories import create_product

TRAIL = """
query Trail($id: ID!, $after: String) {
  auditTrail(entityId: $id, first: 3, after: $after) {
    totalCount
    edges { node { sequence actor action entityId before after requestId idempotencyKey
                   previousHash hash } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def walk(client, entity_id):
    events, after = [], None
    while True:
        body = await gql(client, TRAIL, {"id": entity_id, "after": after})
        conn = body["data"]["auditTrail"]
        events += [e["node"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            return events, conn["totalCount"]
        after = conn["pageInfo"]["endCursor"]


async def lifecycle(client, engine):
    """Apply, approve, disburse, pay: the events of one application."""
    await create_product(engine)
    applied = await client.post(
        "/graphql",
        json={"query": APPLY, "variables": {"input": apply_input(idempotencyKey="a-1")}},
        headers={"X-Request-ID": "req-apply"},
    )
    app_id = applied.json()["data"]["applyForLoan"]["application"]["id"]
    decided = await gql(
        client, DECIDE, {"input": {"applicationId": app_id, "outcome": "APPROVED", "reason": "ok"}}
    )
    loan_id = decided["data"]["decideApplication"]["loan"]["id"]
    await gql(
        client,
        "mutation($id: ID!, $on: Date) { disburseLoan(input: {loanId: $id, "
        "disbursedOn: $on}) { userErrors { code } } }",
        {"id": loan_id, "on": today().isoformat()},
    )
    await gql(
        client,
        'mutation($id: ID!) { recordPayment(input: {loanId: $id, amount: "100"}) '
        "{ userErrors { code } } }",
        {"id": loan_id},
    )
    return app_id, loan_id


async def test_every_change_is_recorded_and_chained(client, engine):
    app_id, loan_id = await lifecycle(client, engine)
    events, total = await walk(client, app_id)
    assert [e["action"] for e in events] == [
        "application.submitted",
        "decision.recorded",
        "loan.created",
        "application.decided",
        "loan.disbursed",
        "payment.recorded",
    ]
    assert total == 6
    first = events[0]
    assert first["actor"] == "admin"
    assert first["requestId"] == "req-apply"
    assert first["idempotencyKey"] == "a-1"
    assert first["before"] is None
    assert first["after"]["status"] == "SUBMITTED"
    assert first["after"]["amount_requested"] == "10000.00"  # amounts stay exact strings
    assert first["entityId"] == app_id
    decided = events[3]
    assert decided["before"]["status"] == "SUBMITTED"
    assert decided["after"]["status"] == "APPROVED"
    assert [e["previousHash"] for e in events] == [None] + [e["hash"] for e in events[:-1]]
    # the loan's id reaches the same chain
    by_loan, _ = await walk(client, loan_id)
    assert by_loan == events


async def test_the_database_refuses_edits_and_deletes(client, engine):
    await lifecycle(client, engine)
    for statement in ("UPDATE audit_events SET actor = 'mallory'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as connection:
                await connection.execute(text(statement))


async def verify(engine):
    async with create_sessionmaker(engine)() as session:
        return await audit_service.verify(session)


async def test_verify_finds_the_first_tampered_event(client, engine):
    await lifecycle(client, engine)
    intact = await verify(engine)
    assert intact.broken is None
    assert intact.events == 6
    # given someone with superuser rights edits an event with the trigger off
    async with engine.begin() as connection:
        target = await connection.scalar(
            text("SELECT id FROM audit_events WHERE action = 'loan.disbursed'")
        )
        await connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        await connection.execute(
            text(
                "UPDATE audit_events SET after = jsonb_set(after, '{principal}', '\"1.00\"') "
                "WHERE id = :id"
            ),
            {"id": target},
        )
        await connection.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
    # then verify names exactly that event
    broken = await verify(engine)
    assert broken.broken is not None
    assert broken.broken.id == target


def run_verify(database_url: str) -> subprocess.CompletedProcess[str]:
    """`lending audit verify` against the test database."""
    env = os.environ | {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "graph.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


async def test_verify_command_exit_codes(client, engine, database_url):
    await lifecycle(client, engine)
    ok = await asyncio.to_thread(run_verify, database_url)
    assert ok.returncode == 0, ok.stderr
    assert "intact: 6 events in 1 chains" in ok.stdout
    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        await connection.execute(
            text("DELETE FROM audit_events WHERE id = (SELECT min(id) + 1 FROM audit_events)")
        )
        await connection.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
    broken = await asyncio.to_thread(run_verify, database_url)
    assert broken.returncode == 1
    assert "BROKEN" in broken.stderr


async def test_a_failed_mutation_records_nothing(client, engine):
    await create_product(engine)
    await gql(client, APPLY, {"input": apply_input(amount="-5")})
    assert (await verify(engine)).events == 0


async def test_audit_trail_of_something_else_is_refused(client, engine):
    body = await gql(client, TRAIL, {"id": to_global_id("Payment", 1)})
    assert "LoanApplication or a Loan" in body["errors"][0]["message"]
    body = await gql(client, TRAIL, {"id": to_global_id("LoanApplication", 999)})
    assert body["data"]["auditTrail"]["totalCount"] == 0
