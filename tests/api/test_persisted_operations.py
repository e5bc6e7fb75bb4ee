"""Persisted operations: catalogue documents sent by their sha256, and PERSISTED_OPERATIONS_ONLY.

By hash (either form, POST or GET) a document answers exactly what its text answers; an
unknown hash and a hash that does not match the text sent with it are refused. With the
setting on, any other document is refused and changes nothing, whatever transport brings it;
with it off (the default), any valid document runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.listener import EventListener
from graph.agents.catalogue import catalogue
from graph.ids import to_global_id
from graph.server.app import create_app
from graph.server.settings import Settings
from tests.dbfixtures import admin_context, http_client
from tests.factories import create_application, create_product

MISSING = to_global_id("LoanApplication", 999_999)  # an id of nothing: reads as null

RAW_APPLY = """
mutation { applyForLoan(input: {
  applicant: { fullName: "Raw Doc", email: "raw.doc@example.com" }
  productCode: "PERSONAL-USD", amount: "5000", termMonths: 12 }) {
  application { id } userErrors { code } } }
"""


@pytest.fixture(scope="module")
def only_app(database_url: str) -> FastAPI:
    settings = Settings(database_url=database_url, persisted_operations_only=True)
    return create_app(settings, database_url)


@pytest.fixture
async def only_client(only_app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(only_app, admin_key) as client:
        yield client


def operations(app: FastAPI) -> Any:
    return catalogue(app.state.schema._schema).by_name


def apply_input(email: str) -> dict[str, Any]:
    return {
        "applicant": {"fullName": "Hash Caller", "email": email},
        "productCode": "PERSONAL-USD",
        "amount": "5000",
        "termMonths": 12,
    }


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/graphql", json=body)


async def test_by_hash_answers_what_the_text_answers(client, app, engine: AsyncEngine) -> None:
    await create_product(engine)
    application = await create_application(engine)
    get = operations(app)["get_application"]
    variables = {"id": to_global_id("LoanApplication", application.id)}
    by_text = await post(
        client, {"query": get.document, "operationName": get.operation_name, "variables": variables}
    )
    assert by_text.status_code == 200
    assert by_text.json()["data"]["application"]["status"] == "SUBMITTED"
    by_id = await post(client, get.request(variables))
    apq = await post(
        client,
        {
            "variables": variables,
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": get.sha256}},
        },
    )
    by_get = await client.get(
        "/graphql",
        params={
            "documentId": f"sha256:{get.sha256}",
            "variables": orjson.dumps(variables).decode(),
        },
    )
    for response in (by_id, apq, by_get):
        assert response.status_code == 200, response.text
        assert response.json()["data"] == by_text.json()["data"]


async def test_a_mutation_runs_by_hash(client, app, engine: AsyncEngine) -> None:
    await create_product(engine)
    apply = operations(app)["apply_for_loan"]
    body = (await post(client, apply.request(apply_input("by.hash@example.com")))).json()
    assert body["data"]["applyForLoan"]["userErrors"] == []
    assert body["data"]["applyForLoan"]["application"]["status"] == "SUBMITTED"


async def test_unknown_and_mismatched_hashes_are_refused(client, app) -> None:
    unknown = await post(client, {"documentId": "sha256:" + "0" * 64})
    assert unknown.status_code == 200
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    apq = await post(
        client, {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab" * 32}}}
    )
    assert apq.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    get = operations(app)["get_application"]
    mismatch = await post(client, {"query": "{ __typename }", "documentId": get.sha256})
    assert mismatch.status_code == 400
    assert mismatch.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    bad = await post(client, {"documentId": 12})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_with_the_setting_off_any_document_runs(client, engine: AsyncEngine) -> None:
    await create_product(engine)
    body = (await post(client, {"query": RAW_APPLY})).json()
    assert body["data"]["applyForLoan"]["userErrors"] == []


async def test_only_catalogue_documents_run_when_the_setting_is_on(
    only_client, only_app, engine: AsyncEngine
) -> None:
    await create_product(engine)
    refused = await post(only_client, {"query": RAW_APPLY})
    assert refused.status_code == 200
    [error] = refused.json()["errors"]
    assert error["extensions"]["code"] == "PERSISTED_OPERATION_REQUIRED"
    assert refused.json().get("data") is None
    async with engine.connect() as connection:
        count = await connection.execute(text("SELECT count(*) FROM applicants"))
        assert count.scalar() == 0
    # A catalogue read asking for one field more is another document: refused too.
    get = operations(only_app)["get_application"]
    more = get.document.replace("id reference status", "id reference status updatedAt", 1)
    assert more != get.document
    body = (await post(only_client, {"query": more, "variables": {"id": MISSING}})).json()
    assert body["errors"][0]["extensions"]["code"] == "PERSISTED_OPERATION_REQUIRED"
    # The same document laid out differently is the same operation.
    relaid = " ".join(line for line in get.document.splitlines() if not line.startswith("#"))
    body = (await post(only_client, {"query": relaid, "variables": {"id": MISSING}})).json()
    assert body["data"] == {"application": None}
    assert "errors" not in body

    apply = operations(only_app)["apply_for_loan"]
    by_hash = (await post(only_client, apply.request(apply_input("only@example.com")))).json()
    assert by_hash["data"]["applyForLoan"]["application"]["status"] == "SUBMITTED"
    by_text = await post(
        only_client, {"query": apply.document, "variables": apply.variables(apply_input("t@x.io"))}
    )
    assert by_text.json()["data"]["applyForLoan"]["userErrors"] == []


async def test_the_setting_holds_for_subscriptions(only_app, database_url: str) -> None:
    events = EventListener(database_url)
    context = admin_context(only_app, events, "t")
    schema = only_app.state.schema
    try:
        refused = await schema.subscribe(
            "subscription { loanEvents { type } }", context_value=context
        )
        first = await anext(refused)
        assert [e.extensions["code"] for e in first.errors] == ["PERSISTED_OPERATION_REQUIRED"]
        watch = operations(only_app)["loan_events"].document
        stream = await schema.subscribe(watch, context_value=context)
        with pytest.raises(TimeoutError):  # listening: nothing was refused
            await asyncio.wait_for(anext(stream), 1)
    finally:
        await events.close()


async def test_a_persisted_subscription_over_plain_http_is_a_clean_400(only_client, app) -> None:
    watch = operations(app)["loan_events"]
    for send in (
        lambda: only_client.post("/graphql", json=watch.request({})),
        lambda: only_client.get("/graphql", params=_as_params(watch.request({}))),
    ):
        response = await send()
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def _as_params(body: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in body.items()}
