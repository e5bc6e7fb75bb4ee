"""Identity and permissions: every role against every mutation, a sample of queries, bad keys."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from db.session import create_sessionmaker
from graph.ids import to_global_id
from graph.server.app import create_app
from graph.server.settings import Settings
from lending.access import STAFF_ROLES, Role
from lending.services import api_keys as key_service
from tests.dbfixtures import gql, http_client

R = Role
MISSING_APP = to_global_id("LoanApplication", 10**9)
MISSING_LOAN = to_global_id("Loan", 10**9)
MISSING_PAYMENT = to_global_id("Payment", 10**9)

# mutation -> (operation, roles allowed). Inputs point at nothing, so allowed calls write nothing.
MUTATIONS = {
    "applyForLoan": (
        """mutation { applyForLoan(input: {applicant: {fullName: "A", email: "bad"},
           productCode: "NONE", amount: "1", termMonths: 1}) { userErrors { code } } }""",
        {R.AGENT, R.UNDERWRITER, R.ADMIN},
    ),
    "withdrawApplication": (
        f'mutation {{ withdrawApplication(input: {{applicationId: "{MISSING_APP}"}}) '
        "{ userErrors { code } } }",
        {R.AGENT, R.UNDERWRITER, R.ADMIN},
    ),
    "decideApplication": (
        f'mutation {{ decideApplication(input: {{applicationId: "{MISSING_APP}", '
        'outcome: "APPROVED", reason: "x"}) { userErrors { code } } }',
        {R.UNDERWRITER, R.ADMIN},
    ),
    "disburseLoan": (
        f'mutation {{ disburseLoan(input: {{loanId: "{MISSING_LOAN}"}}) '
        "{ userErrors { code } } }",
        {R.SERVICER, R.ADMIN},
    ),
    "recordPayment": (
        f'mutation {{ recordPayment(input: {{loanId: "{MISSING_LOAN}", amount: "1"}}) '
        "{ userErrors { code } } }",
        {R.SERVICER, R.ADMIN},
    ),
    "reversePayment": (
        f'mutation {{ reversePayment(input: {{paymentId: "{MISSING_PAYMENT}"}}) '
        "{ userErrors { code } } }",
        {R.SERVICER, R.ADMIN},
    ),
}

QUERIES = {
    "loanProducts": "{ loanProducts { code } }",
    "applications": "{ applications(first: 1) { totalCount } }",
    "loans": "{ loans(first: 1) { totalCount } }",
    "node": f'{{ node(id: "{MISSING_APP}") {{ id }} }}',
    "nodes": f'{{ nodes(ids: ["{MISSING_APP}"]) {{ id }} }}',
    "auditTrail": f'{{ auditTrail(entityId: "{MISSING_APP}") {{ totalCount }} }}',
    "overdueInstallments": '{ overdueInstallments(asOf: "2026-01-01") { totalCount } }',
    "portfolio": '{ portfolio(asOf: "2026-01-01") { currency par30 } }',
    "decisionStats": '{ decisionStats(from: "2026-01-01", to: "2026-02-01", '
    'asOf: "2026-03-01") { decisions badRate } }',
}


@pytest.mark.parametrize("role", list(STAFF_ROLES))
@pytest.mark.parametrize("mutation", list(MUTATIONS))
async def test_every_role_against_every_mutation(app, api_keys, engine, role, mutation):
    operation, allowed = MUTATIONS[mutation]
    async with http_client(app, api_keys[role]) as client:
        body = await gql(client, operation)
    if role in allowed:
        assert "errors" not in body, body
        assert body["data"][mutation]["userErrors"], "reached the resolver"
    else:
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["path"] == [mutation]
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM audit_events")) == 0


@pytest.mark.parametrize("role", list(STAFF_ROLES))
@pytest.mark.parametrize("query", list(QUERIES))
async def test_every_role_reads(app, api_keys, role, query):
    async with http_client(app, api_keys[role]) as client:
        body = await gql(client, QUERIES[query])
    assert "errors" not in body, body


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Bearer lnd_unknown", "Basic YWRtaW46YWRtaW4=", "lnd_demo_admin"],
)
async def test_missing_or_unknown_keys_get_401(app, header):
    async with http_client(app, None) as client:
        headers = {"Authorization": header} if header is not None else {}
        response = await client.post(
            "/graphql", json={"query": "{ loanProducts { code } }"}, headers=headers
        )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_bearer_token_is_refused_where_none_are_configured(app):
    async with http_client(app, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln") as client:
        response = await client.post("/graphql", json={"query": "{ loanProducts { code } }"})
    assert response.status_code == 401
    [error] = response.json()["errors"]
    assert error["message"] == "Bearer tokens are not accepted by this service; send an API key."


async def test_a_revoked_key_is_refused_and_the_name_is_the_actor(app, engine):
    async with create_sessionmaker(engine)() as session, session.begin():
        _, key = await key_service.create_key(session, name="agent.temp", role=Role.AGENT)
    async with http_client(app, key) as client:
        ok = await client.post("/graphql", json={"query": "{ loanProducts { code } }"})
        assert ok.status_code == 200
        async with create_sessionmaker(engine)() as session, session.begin():
            await key_service.revoke_key(session, "agent.temp")
        # the process hears of the revocation (a notification) within a second
        deadline = time.monotonic() + 1
        while True:
            refused = await client.post("/graphql", json={"query": "{ loanProducts { code } }"})
            if refused.status_code != 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
    assert refused.status_code == 401
    async with create_sessionmaker(engine)() as session, session.begin():
        await session.execute(text("DELETE FROM api_keys WHERE name = 'agent.temp'"))


async def test_keys_are_stored_only_as_hashes(engine, api_keys):
    async with engine.connect() as connection:
        stored = (await connection.execute(text("SELECT key_hash FROM api_keys"))).scalars().all()
    assert all(len(h) == 64 for h in stored)
    assert not set(api_keys.values()) & set(stored)


async def test_production_refuses_to_start_with_demo_keys(database_url, engine):
    async with create_sessionmaker(engine)() as session, session.begin():
        await key_service.ensure_demo_keys(session)
    app = create_app(
        Settings(database_url=database_url, lending_env="production", metrics_token="m" * 32),
        database_url,
    )
    try:
        with pytest.raises(RuntimeError, match="demo API keys are present"):
            async with app.router.lifespan_context(app):
                pass
    finally:
        async with create_sessionmaker(engine)() as session, session.begin():
            await session.execute(text("DELETE FROM api_keys WHERE demo"))


async def test_production_serves_no_graphiql(database_url, admin_key):
    app = create_app(
        Settings(database_url=database_url, lending_env="production", metrics_token="m" * 32),
        database_url,
    )
    async with http_client(app, admin_key) as client:
        page = await client.get("/graphql", headers={"accept": "text/html"})
        assert "graphiql" not in page.text.lower()
        body = await gql(client, "{ loanProducts { code } }")
    assert body["data"] == {"loanProducts": []}


async def test_every_root_field_declares_a_permission():
    from graph.schema import Mutation, Query, Subscription

    missing = []
    for root in (Query, Mutation, Subscription):
        for field in root.__strawberry_definition__.fields:
            if not field.permission_classes:
                missing.append(f"{root.__name__}.{field.name}")
    assert missing == []
