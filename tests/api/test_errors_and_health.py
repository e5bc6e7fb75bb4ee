"""Error hygiene (masked faults, readable client errors) and the health endpoints."""

from __future__ import annotations

import logging

import pytest

from db.repositories import products as product_repo
from tests.dbfixtures import gql
from tests.factories import create_product

PRODUCTS = "{ loanProducts { code } }"


async def broken(*_args, **_kwargs):
    raise RuntimeError("connection string postgres://secret@db leaked")


@pytest.mark.parametrize("path", ["per field", "compiled", "compiled, short path"])
async def test_unexpected_fault_is_masked_and_logged_with_the_request_id(
    client, per_field_client, app, monkeypatch, caplog, path
):
    # given a read that fails in a way no client could cause, on each path
    if path == "per field":
        client = per_field_client
        monkeypatch.setattr(product_repo, "list_products", broken)
    else:
        if path == "compiled, short path":  # the document's plan is cached
            await client.post("/graphql", json={"query": PRODUCTS})
        monkeypatch.setattr(app.state.compiled.pool, "fetch_text", broken)
    caplog.set_level(logging.ERROR, logger="lending.errors")

    # when a client asks for products with its own request id
    response = await client.post(
        "/graphql", json={"query": PRODUCTS}, headers={"X-Request-ID": "req-123"}
    )

    # then it gets a generic error naming the request id, and no detail of the fault
    assert response.status_code == 200
    body = response.json()
    assert response.headers["X-Request-ID"] == "req-123"
    [error] = body["errors"]
    assert error["message"] == "Internal server error (request id req-123)."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-123"}
    assert "secret" not in response.text
    # and the log has the traceback and the request id
    [record] = [r for r in caplog.records if "req-123" in r.getMessage()]
    assert record.exc_info is not None
    assert "leaked" in str(record.exc_info[1])


async def test_a_request_id_is_made_when_none_is_sent(client):
    response = await client.post("/graphql", json={"query": PRODUCTS})
    assert len(response.headers["X-Request-ID"]) == 32


async def test_a_hostile_request_id_is_replaced(client):
    response = await client.post(
        "/graphql", json={"query": PRODUCTS}, headers={"X-Request-ID": "<script>" * 20}
    )
    assert "<" not in response.headers["X-Request-ID"]


async def test_query_errors_stay_readable(client):
    body = await gql(client, "{ loanProducts { noSuchField } }")
    [error] = body["errors"]
    assert "noSuchField" in error["message"]


@pytest.mark.parametrize("first", [101, -1, 1_000_000])
async def test_page_size_is_bounded(client, first):
    body = await gql(
        client, "query($f: Int) { applications(first: $f) { totalCount } }", {"f": first}
    )
    [error] = body["errors"]
    assert "between 0 and 100" in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "cursor", ["garbage", "eyJ4IjoxfQ", "W10", "WyJTVUJNSVRURURfQVQ6REVTQyIsIngiLDFd"]
)
async def test_bad_cursor_is_a_readable_error(client, cursor):
    body = await gql(
        client, "query($a: String) { applications(after: $a) { totalCount } }", {"a": cursor}
    )
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_malformed_json_body_is_not_a_500(client):
    response = await client.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_says_ready_and_nothing_more(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}  # no migration revision, no replica state


async def test_graphiql_is_served_to_browsers(client):
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_products_list_active_by_default(client, engine):
    await create_product(engine, code="B-USD")
    await create_product(engine, code="A-OLD", active=False)
    body = await gql(
        client,
        "{ active: loanProducts { code } all: loanProducts(activeOnly: false) { code active } }",
    )
    assert body["data"]["active"] == [{"code": "B-USD"}]
    assert body["data"]["all"] == [
        {"code": "A-OLD", "active": False},
        {"code": "B-USD", "active": True},
    ]
