"""Dry runs: every mutation checks and computes everything, then keeps nothing.

For each mutation: a dry run answers what the real call then answers (ids, references, times
and versions aside), and leaves every table, the audit trail, the idempotency records and the
loan-event channel as they were; a dry run that fails gives the real call's userErrors.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from db.models import Base
from db.repositories.events import CHANNEL
from db.session import raw_connection
from tests.api.mutation_catalogue import (
    SETUPS,
    apply_setup,
    decide_setup,
    operation,
    stable,
)
from tests.dbfixtures import gql
from tests.factories import create_product


async def state(engine) -> dict[str, Any]:
    """Every table's rows, as text: what a dry run must leave exactly as it was."""
    found: dict[str, Any] = {}
    async with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = await connection.execute(
                text(
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')), "
                    f"count(*) FROM {table.name} t"
                )
            )
            found[table.name] = tuple(rows.one())
    return found


class Notifications:
    """Loan events announced on the channel while listening."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    def __call__(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.heard.append(payload)


@pytest.mark.parametrize("name", list(SETUPS))
async def test_a_dry_run_answers_as_the_real_call_and_keeps_nothing(client, engine, name):
    # given what the mutation acts on, and somebody listening for loan events
    await create_product(engine)
    values = await SETUPS[name](engine, client)
    listener = await raw_connection(engine.url.render_as_string(hide_password=False))
    heard = Notifications()
    await listener.add_listener(CHANNEL, heard)
    try:
        before = await state(engine)

        # when it is dry-run, with an idempotency key
        dry = await gql(
            client, operation(name), {"input": values | {"dryRun": True, "idempotencyKey": "k"}}
        )
        await asyncio.sleep(0.2)  # a notification would have arrived by now

        # then it answers a full result, and nothing at all was kept or announced
        assert "errors" not in dry, dry
        dry_payload = dry["data"][name]
        assert dry_payload["userErrors"] == [], dry_payload
        assert dry_payload["dryRun"] is True
        assert await state(engine) == before
        assert heard.heard == []
        made = [v["id"] for v in dry_payload.values() if isinstance(v, dict) and "id" in v]
        found = await gql(client, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": made})
        created = {
            "applyForLoan",
            "requestReminder",
            "recordPayment",
            "settleLoan",
        }
        if name in created:  # a dry run's new objects do not exist
            assert found["data"]["nodes"][0] is None

        # and the real call, with the same key, answers the same, and keeps it
        real = await gql(client, operation(name), {"input": values | {"idempotencyKey": "k"}})
        real_payload = real["data"][name]
        assert real_payload["dryRun"] is False
        assert real_payload["replayed"] is False
        assert stable(real_payload) == stable(dry_payload) | {"dryRun": False}
        await asyncio.sleep(0.2)
        assert await state(engine) != before
        assert heard.heard, "the real call announces what it did"
    finally:
        await listener.close()


DECIDE_BADLY = {
    "outcome": "MAYBE",
    "reason": "",
    "approvedAmount": "12.345",
}


async def test_a_failing_dry_run_gives_the_real_calls_user_errors(client, engine):
    await create_product(engine)
    values = await decide_setup(engine, client) | DECIDE_BADLY
    before = await state(engine)
    dry = await gql(client, operation("decideApplication"), {"input": values | {"dryRun": True}})
    real = await gql(client, operation("decideApplication"), {"input": values})
    dry_payload, real_payload = dry["data"]["decideApplication"], real["data"]["decideApplication"]
    assert dry_payload["userErrors"]
    assert dry_payload["userErrors"] == real_payload["userErrors"]
    assert (dry_payload["dryRun"], real_payload["dryRun"]) == (True, False)
    assert await state(engine) == before


async def test_a_dry_run_with_a_used_key_replays_as_the_real_call_would(client, engine):
    await create_product(engine)
    values = await apply_setup(engine, client) | {"idempotencyKey": "once"}
    first = await gql(client, operation("applyForLoan"), {"input": values})
    again = await gql(client, operation("applyForLoan"), {"input": values | {"dryRun": True}})
    other = await gql(
        client,
        operation("applyForLoan"),
        {"input": values | {"dryRun": True, "amount": "6000"}},
    )
    assert again["data"]["applyForLoan"]["replayed"] is True
    assert again["data"]["applyForLoan"]["dryRun"] is True
    assert (
        again["data"]["applyForLoan"]["application"]["id"]
        == first["data"]["applyForLoan"]["application"]["id"]
    )
    assert [e["code"] for e in other["data"]["applyForLoan"]["userErrors"]] == [
        "IDEMPOTENCY_KEY_REUSED"
    ]


async def test_a_dry_run_then_a_real_mutation_in_one_request(client, engine):
    # the dry run's transaction ends before the next mutation of the request runs
    await create_product(engine)
    values = await decide_setup(engine, client)
    body = await gql(
        client,
        """mutation($dry: DecideApplicationInput!, $real: DecideApplicationInput!) {
          dry: decideApplication(input: $dry) {
            application { status } dryRun userErrors { code } }
          real: decideApplication(input: $real) {
            application { status } dryRun userErrors { code } }
        }""",
        {"dry": values | {"dryRun": True}, "real": values},
    )
    assert body["data"]["dry"] == {
        "application": {"status": "APPROVED"},
        "dryRun": True,
        "userErrors": [],
    }
    assert body["data"]["real"] == {
        "application": {"status": "APPROVED"},
        "dryRun": False,
        "userErrors": [],
    }
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM decisions")) == 1


def test_every_mutation_is_covered():
    from graph.schema import schema

    mutation = schema._schema.mutation_type
    assert mutation is not None
    assert set(mutation.fields) == set(SETUPS)
