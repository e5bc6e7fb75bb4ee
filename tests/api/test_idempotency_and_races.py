"""Retries and races, over real separate connections: nothing lost, nothing duplicated."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import text

from db.repositories import idempotency
from db.session import create_sessionmaker
from graph.ids import to_global_id
from lending.access import Role
from tests.api.operations import APPLY, DECIDE, WITHDRAW, apply_input
from tests.dbfixtures import gql, http_client
from tests.factories import create_application, create_loan, create_product

APPLY_REPLAYED = APPLY.replace("userErrors {", "replayed userErrors {")


async def count(engine, table: str) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(text(f"SELECT count(*) FROM {table}")))


async def test_a_retry_with_the_same_key_replays_without_writing(client, engine):
    await create_product(engine)
    variables = {"input": apply_input(idempotencyKey="apply-john-1")}
    first = (await gql(client, APPLY_REPLAYED, variables))["data"]["applyForLoan"]
    events = await count(engine, "audit_events")
    second = (await gql(client, APPLY_REPLAYED, variables))["data"]["applyForLoan"]
    assert first["replayed"] is False
    assert second["replayed"] is True
    assert second["application"]["id"] == first["application"]["id"]
    assert await count(engine, "loan_applications") == 1
    assert await count(engine, "audit_events") == events  # the replay wrote nothing


async def test_the_same_key_with_another_input_is_refused(client, engine):
    await create_product(engine)
    await gql(client, APPLY, {"input": apply_input(idempotencyKey="k-1")})
    body = await gql(
        client, APPLY_REPLAYED, {"input": apply_input(amount="12000", idempotencyKey="k-1")}
    )
    payload = body["data"]["applyForLoan"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])
    ]
    assert await count(engine, "loan_applications") == 1


async def test_keys_are_scoped_per_actor(app, api_keys, engine):
    await create_product(engine)
    results = []
    for role, email in ((Role.AGENT, "a@example.com"), (Role.UNDERWRITER, "u@example.com")):
        async with http_client(app, api_keys[role]) as client:
            applicant = {"fullName": "Same Key", "email": email}
            body = await gql(
                client,
                APPLY_REPLAYED,
                {"input": apply_input(applicant=applicant, idempotencyKey="shared-key")},
            )
            results.append(body["data"]["applyForLoan"])
    assert [r["replayed"] for r in results] == [False, False]
    assert await count(engine, "loan_applications") == 2


async def test_a_failed_attempt_does_not_burn_the_key(client, engine):
    await create_product(engine)
    bad = await gql(client, APPLY, {"input": apply_input(amount="-1", idempotencyKey="k-2")})
    assert bad["data"]["applyForLoan"]["userErrors"]
    good = await gql(client, APPLY_REPLAYED, {"input": apply_input(idempotencyKey="k-2")})
    # a different input than the failed one, but nothing was stored for the key
    assert good["data"]["applyForLoan"]["userErrors"] == []
    assert good["data"]["applyForLoan"]["replayed"] is False


async def test_idempotency_key_length(client, engine):
    await create_product(engine)
    body = await gql(client, APPLY, {"input": apply_input(idempotencyKey="x" * 256)})
    errors = body["data"]["applyForLoan"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [
        ("VALIDATION_FAILED", ["input", "idempotencyKey"])
    ]


async def test_purge_removes_only_old_keys(client, engine):
    await create_product(engine)
    await gql(client, APPLY, {"input": apply_input(idempotencyKey="old")})
    await gql(
        client,
        APPLY,
        {
            "input": apply_input(
                applicant={"fullName": "B", "email": "b@example.com"}, idempotencyKey="new"
            )
        },
    )
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' "
                "WHERE key = 'old'"
            )
        )
    from datetime import timedelta

    async with create_sessionmaker(engine)() as session, session.begin():
        removed = await idempotency.purge(session, timedelta(hours=24))
    assert removed == 1
    async with engine.connect() as connection:
        keys = (await connection.execute(text("SELECT key FROM idempotency_keys"))).scalars()
        assert list(keys) == ["new"]


async def test_stale_versions_are_refused(client, engine):
    await create_product(engine)
    application = await create_application(engine)
    gid = to_global_id("LoanApplication", application.id)
    stale = await gql(
        client,
        DECIDE,
        {
            "input": {
                "applicationId": gid,
                "outcome": "REFERRED",
                "reason": "x",
                "expectedVersion": 7,
            }
        },
    )
    errors = stale["data"]["decideApplication"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [
        ("STALE_VERSION", ["input", "expectedVersion"])
    ]
    fresh = await gql(
        client,
        DECIDE,
        {
            "input": {
                "applicationId": gid,
                "outcome": "REFERRED",
                "reason": "x",
                "expectedVersion": 1,
            }
        },
    )
    assert fresh["data"]["decideApplication"]["application"]["version"] == 2
    withdraw = await gql(client, WITHDRAW, {"input": {"applicationId": gid, "expectedVersion": 1}})
    assert withdraw["data"]["withdrawApplication"]["userErrors"][0]["code"] == "STALE_VERSION"
    loan = await create_loan(engine)
    disburse = await gql(
        client,
        "mutation($id: ID!) { disburseLoan(input: {loanId: $id, expectedVersion: 5}) "
        "{ userErrors { code } } }",
        {"id": to_global_id("Loan", loan.id)},
    )
    assert disburse["data"]["disburseLoan"]["userErrors"] == [{"code": "STALE_VERSION"}]
    assert await count(engine, "installments") == 0


async def test_50_concurrent_decisions_exactly_one_wins(client, engine):
    # given one submitted application
    await create_product(engine)
    application = await create_application(engine)
    gid = to_global_id("LoanApplication", application.id)

    # when 50 agents decide it at once, each believing it is at version 1
    async def decide(i: int):
        outcome = ("APPROVED", "REJECTED")[i % 2]
        return await gql(
            client,
            DECIDE,
            {
                "input": {
                    "applicationId": gid,
                    "outcome": outcome,
                    "reason": f"agent {i}",
                    "expectedVersion": 1,
                }
            },
        )

    results = await asyncio.gather(*(decide(i) for i in range(50)))

    # then exactly one succeeds; the others are refused with a typed error
    codes = Counter(
        (r["data"]["decideApplication"]["userErrors"] or [{"code": "OK"}])[0]["code"]
        for r in results
    )
    assert codes["OK"] == 1
    assert set(codes) <= {"OK", "STALE_VERSION", "INVALID_TRANSITION"}
    assert sum(codes.values()) == 50
    assert await count(engine, "decisions") == 1
    assert await count(engine, "loans") <= 1


async def test_20_concurrent_applies_with_one_key_make_one_application(client, engine):
    await create_product(engine)
    variables = {"input": apply_input(idempotencyKey="burst-1")}
    results = await asyncio.gather(*(gql(client, APPLY_REPLAYED, variables) for _ in range(20)))
    payloads = [r["data"]["applyForLoan"] for r in results]
    assert all(p["userErrors"] == [] for p in payloads)
    assert Counter(p["replayed"] for p in payloads) == {False: 1, True: 19}
    assert len({p["application"]["id"] for p in payloads}) == 1
    assert await count(engine, "loan_applications") == 1


async def test_20_concurrent_applies_for_one_email_make_one_application(client, engine):
    await create_product(engine)
    results = await asyncio.gather(
        *(gql(client, APPLY, {"input": apply_input()}) for _ in range(20))
    )
    codes = Counter(
        (r["data"]["applyForLoan"]["userErrors"] or [{"code": "OK"}])[0]["code"] for r in results
    )
    assert codes == {"OK": 1, "DUPLICATE_OPEN_APPLICATION": 19}
    assert await count(engine, "loan_applications") == 1
    assert await count(engine, "applicants") == 1
