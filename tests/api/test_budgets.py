"""Per-key budgets of cost points: a request the key's bucket cannot pay for runs nothing and
is answered 429 THROTTLED with Retry-After, on the compiled path as on the per-field one."""

from __future__ import annotations

import math

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.models import LoanApplication
from db.session import create_sessionmaker
from lending.access import Budget, Role
from lending.services import api_keys as key_service
from tests.dbfixtures import http_client
from tests.factories import create_product

PRODUCTS = "{ loanProducts { code } }"  # costs 100: a list of at most 100 products
APPLY = """mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) {
  application { reference } userErrors { code } } }"""


async def _key(engine: AsyncEngine, name: str, role: Role, budget: Budget) -> str:
    async with create_sessionmaker(engine)() as session, session.begin():
        _, key = await key_service.create_key(session, name=name, role=role, budget=budget)
    return key


async def _post(client: httpx.AsyncClient, query: str, variables: dict | None = None):
    return await client.post("/graphql", json={"query": query, "variables": variables or {}})


def _throttled(response: httpx.Response) -> dict:
    assert response.status_code == 429, response.text
    body = response.json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == "THROTTLED"
    assert error["extensions"]["retryable"] is True
    assert int(response.headers["retry-after"]) == error["extensions"]["retryAfter"] >= 1
    return body


async def test_a_query_the_bucket_cannot_pay_for_is_throttled_on_both_paths(
    app: FastAPI, per_field_app: FastAPI, engine: AsyncEngine, sql
):
    await create_product(engine)
    key = await _key(engine, "budget-query", Role.SERVICER, Budget(250, 10))
    for served in (app, per_field_app):
        async with http_client(served, key) as client:
            # two queries of 100 points are paid (the second by the compiled short path)
            for left in (150, 50):
                response = await _post(client, PRODUCTS)
                assert response.status_code == 200, response.text
                cost = response.json()["extensions"]["cost"]
                assert cost["requestedQueryCost"] == 100
                status = cost["throttleStatus"]
                assert status["maximumAvailable"] == 250
                assert status["restoreRate"] == 10
                assert left <= status["currentlyAvailable"] < left + 10
            # the third is not, and reads nothing
            sql.statements.clear()
            body = _throttled(await _post(client, PRODUCTS))
            assert body.get("data") is None
            assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 100
            assert not [s for s in sql.statements if "loan_products" in s]
            # and it is told to wait for the 50 missing points at 10 a second
            assert body["errors"][0]["extensions"]["retryAfter"] == math.ceil(50 / 10)


async def test_a_mutation_takes_a_fixed_cost_and_a_throttled_one_writes_nothing(
    app: FastAPI, engine: AsyncEngine
):
    await create_product(engine)
    key = await _key(engine, "budget-mutation", Role.AGENT, Budget(150, 1))
    variables = {
        "input": {
            "applicant": {"fullName": "Grace Hopper", "email": "grace@example.com"},
            "productCode": "PERSONAL-USD",
            "amount": "2500",
            "termMonths": 12,
        }
    }
    async with http_client(app, key) as client:
        first = await _post(client, APPLY, variables)
        assert first.status_code == 200, first.text
        assert first.json()["data"]["applyForLoan"]["userErrors"] == []
        assert first.json()["extensions"]["cost"]["requestedQueryCost"] == 100
        variables["input"]["applicant"]["email"] = "grace2@example.com"
        _throttled(await _post(client, APPLY, variables))
    async with create_sessionmaker(engine)() as session:
        assert await session.scalar(select(func.count()).select_from(LoanApplication)) == 1


async def test_one_keys_empty_bucket_leaves_other_keys_alone(app: FastAPI, engine: AsyncEngine):
    await create_product(engine)
    greedy = await _key(engine, "budget-greedy", Role.AGENT, Budget(100, 1))
    other = await _key(engine, "budget-other", Role.AGENT, Budget(100, 1))
    async with http_client(app, greedy) as client:
        assert (await _post(client, PRODUCTS)).status_code == 200
        _throttled(await _post(client, PRODUCTS))
    async with http_client(app, other) as client:
        assert (await _post(client, PRODUCTS)).status_code == 200
