"""Overload and abuse: bounded waits for connections and statements, bounded bodies, and a code
on every error a client can get."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from strawberry.extensions import SchemaExtension

from db.session import raw_connection
from graph.schema import build_schema
from graph.server.app import create_app
from graph.server.settings import Settings
from tests.dbfixtures import http_client
from tests.factories import create_product

APPLY = """mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) {
  application { id } userErrors { code } } }"""
DECIDE = """mutation($input: DecideApplicationInput!) { decideApplication(input: $input) {
  decision { id } userErrors { code } } }"""
APPLICANTS = "{ applicants(first: 5) { edges { node { email } } } }"


def apply_input(n: int) -> dict:
    return {
        "input": {
            "applicant": {"fullName": f"Limits {n}", "email": f"limits-{n}@example.com"},
            "productCode": "PERSONAL-USD",
            "amount": "5000",
            "termMonths": 12,
        }
    }


async def _serve(settings: Settings, url: str) -> FastAPI:
    return create_app(settings, url)


async def _close(app: FastAPI) -> None:
    await app.state.compiled.pool.close()
    await app.state.principals.close()
    await app.state.engine.dispose()


@pytest.fixture
async def tight(database_url, request) -> AsyncIterator[FastAPI]:
    """One pooled connection; (pool timeout, statement timeout[, lock timeout]) from the test's
    parameter."""
    pool_timeout, statement_timeout, lock_timeout = (*request.param, 0.0)[:3]
    settings = Settings(
        database_url=database_url,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout=pool_timeout,
        db_statement_timeout=statement_timeout,
        db_lock_timeout=lock_timeout,
        compiled_reads=False,
        key_max_concurrency=4,  # one key, two requests: the pool, not its share, is tested
    )
    app = await _serve(settings, database_url)
    yield app
    await _close(app)


async def _locked_application(client: httpx.AsyncClient, database_url: str, n: int):
    """An application whose row is locked from outside: (its id, the locking connection)."""
    applied = await client.post("/graphql", json={"query": APPLY, "variables": apply_input(n)})
    app_id = applied.json()["data"]["applyForLoan"]["application"]["id"]
    blocker = await raw_connection(database_url)
    await blocker.execute("BEGIN")
    await blocker.execute("SELECT 1 FROM loan_applications FOR UPDATE")
    return app_id, blocker


@pytest.mark.parametrize("tight", [(5.0, 0.5)], indirect=True)
async def test_a_statement_that_runs_too_long_is_cut_off_with_a_retryable_503(
    tight, engine, database_url, admin_key
):
    await create_product(engine)
    async with http_client(tight, admin_key) as client:
        # given a decision that has to wait for a row locked elsewhere
        app_id, blocker = await _locked_application(client, database_url, 1)
        try:
            decide = {"input": {"applicationId": app_id, "outcome": "REJECTED", "reason": "no"}}
            began = time.monotonic()
            # when it waits longer than the statement timeout
            response = await client.post("/graphql", json={"query": DECIDE, "variables": decide})
            waited = time.monotonic() - began
        finally:
            await blocker.execute("ROLLBACK")
            await blocker.close()
        # then it is answered 503, soon, and wrote nothing
        assert response.status_code == 503, response.text
        assert response.json()["errors"][0]["extensions"]["retryable"] is True
        assert waited < 3
        retried = await client.post("/graphql", json={"query": DECIDE, "variables": decide})
        assert retried.json()["data"]["decideApplication"]["userErrors"] == []


@pytest.mark.parametrize("tight", [(5.0, 15.0, 0.4)], indirect=True)
async def test_a_writer_waits_for_a_row_lock_no_longer_than_the_lock_timeout(
    tight, engine, database_url, admin_key
):
    await create_product(engine)
    async with http_client(tight, admin_key) as client:
        # given a decision, with an idempotency key, on a row another transaction holds
        app_id, blocker = await _locked_application(client, database_url, 3)
        decide = {
            "input": {
                "applicationId": app_id,
                "outcome": "REJECTED",
                "reason": "no",
                "idempotencyKey": "lock-timeout-1",
            }
        }
        try:
            began = time.monotonic()
            response = await client.post("/graphql", json={"query": DECIDE, "variables": decide})
            waited = time.monotonic() - began
            # reads are not held up meanwhile
            read = await client.post("/graphql", json={"query": APPLICANTS})
        finally:
            await blocker.execute("ROLLBACK")
            await blocker.close()
        # then it is refused after the lock timeout, not the statement timeout, as retryable
        assert response.status_code == 503, response.text
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert error["extensions"]["retryable"] is True
        assert 0.3 < waited < 2.0
        assert read.status_code == 200
        # and nothing was kept, not even the key: the same retry now succeeds
        retried = await client.post("/graphql", json={"query": DECIDE, "variables": decide})
        assert retried.json()["data"]["decideApplication"]["userErrors"] == []
        assert retried.json()["data"]["decideApplication"]["decision"]["id"]


@pytest.mark.parametrize("tight", [(0.3, 3.0)], indirect=True)
async def test_no_free_connection_in_time_is_a_retryable_503(
    tight, engine, database_url, admin_key
):
    await create_product(engine)
    async with http_client(tight, admin_key) as client:
        # given the only pooled connection held by a decision waiting on a lock
        app_id, blocker = await _locked_application(client, database_url, 2)
        decide = {"input": {"applicationId": app_id, "outcome": "REJECTED", "reason": "no"}}
        try:
            holding = asyncio.create_task(
                client.post("/graphql", json={"query": DECIDE, "variables": decide})
            )
            await asyncio.sleep(0.1)
            # when a read needs a connection meanwhile
            began = time.monotonic()
            read = await client.post("/graphql", json={"query": APPLICANTS})
            waited = time.monotonic() - began
            await holding
        finally:
            await blocker.execute("ROLLBACK")
            await blocker.close()
        # then it is answered 503 after the pool timeout, not after the lock is released
        assert read.status_code == 503, read.text
        assert read.headers["retry-after"] == "1"
        assert read.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert waited < 1.5


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_over_the_limit_is_413_before_it_is_parsed(client, chunked):
    big = b'{"query": "{ loanProducts { code } }", "pad": "' + b"x" * (1 << 20) + b'"}'

    async def stream():
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    content = stream() if chunked else big
    response = await client.post(
        "/graphql", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "REQUEST_TOO_LARGE", "limit": 1 << 20}


async def test_a_body_under_the_limit_is_served(client):
    padded = '{"query": "{ loanProducts { code } }", "variables": {"pad": "' + "x" * 900_000
    response = await client.post(
        "/graphql", content=padded + '"}}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


DEEP = "{ loans { edges { node { " + "application { loan { " * 8 + "id" + " } }" * 8 + " } } } }"


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{ loanProducts { code", None, "GRAPHQL_PARSE_FAILED"),
        ("{ loanProducts { nope } }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("query($n: Int!) { applicants(first: $n) { totalCount } }", {"n": "x"}, "BAD_USER_INPUT"),
        ("{ applicants(first: 1000) { totalCount } }", None, "BAD_USER_INPUT"),
        ("{ a: loanProducts { code } " + "x: __typename " * 40 + "}", None, "QUERY_TOO_COMPLEX"),
        ("{ " + "loanProducts { code } " * 2000 + "}", None, "QUERY_TOO_COMPLEX"),
        (DEEP, None, "QUERY_TOO_COMPLEX"),
    ],
)
async def test_every_error_has_a_code(client, query, variables, code):
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == [code] * len(errors), errors


async def test_a_forbidden_field_has_a_code(app, api_keys):
    from lending.access import Role

    async with http_client(app, api_keys[Role.AGENT]) as agent:
        response = await agent.post(
            "/graphql",
            json={
                "query": 'mutation { disburseLoan(input: {loanId: "x"}) { userErrors { code } } }'
            },
        )
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"


class _Exploding(SchemaExtension):
    def on_execute(self):
        raise RuntimeError("secret internals of an extension")
        yield


async def test_a_fault_in_an_extension_hook_is_masked_like_a_resolvers(
    database_url, admin_key, caplog
):
    settings = Settings(database_url=database_url)
    schema = build_schema(settings)
    schema.extensions = [*schema.extensions, _Exploding]
    app = create_app(settings, database_url, schema)
    try:
        async with http_client(app, admin_key) as client:
            response = await client.post(
                "/graphql",
                json={"query": "{ applicants(first: 1) { totalCount } }"},
                headers={"X-Request-ID": "ext-1"},
            )
    finally:
        await _close(app)
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["message"] == "Internal server error (request id ext-1)."
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret" not in response.text
    assert any(r.exc_info for r in caplog.records if "ext-1" in r.getMessage())
