"""What frontend clients expect at the HTTP level.

- Apollo's persisted-query link (and Relay's): the hash alone first; PersistedQueryNotFound;
  the text with its hash; then the hash alone again, by POST and by GET.
- GraphQL over HTTP: ``application/graphql-response+json`` when accepted, a 400 for a request
  that did not parse, validate or coerce its variables; JSON with a code for every error,
  never plain text; ``Cache-Control: private, no-store``.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from fastapi import FastAPI

from graph.agents.persisted import REGISTERED_MAX_CHARS, Registered
from graph.server.app import create_app
from graph.server.settings import Settings
from tests.dbfixtures import http_client
from tests.factories import create_product

PRODUCTS = "query Products { loanProducts { code name } }"
GRAPHQL_RESPONSE = "application/graphql-response+json"


def apq(query: str | None, sha256: str) -> dict:
    body: dict = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha256}}}
    if query is not None:
        body["query"] = query
    return body


async def test_apollo_link_semantics_hash_then_text_then_hash(client, engine) -> None:
    await create_product(engine)
    document = PRODUCTS + " # apq-round-trip"
    sha256 = hashlib.sha256(document.encode()).hexdigest()
    # the link sends the hash alone: not known yet
    first = await client.post("/graphql", json=apq(None, sha256))
    assert first.status_code == 200
    [error] = first.json()["errors"]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # so it sends the text with the hash: answered, and remembered
    second = await client.post("/graphql", json=apq(document, sha256))
    assert second.status_code == 200
    assert second.json()["data"]["loanProducts"][0]["code"] == "PERSONAL-USD"
    # from now on the hash alone runs it, by POST and by GET
    third = await client.post("/graphql", json=apq(None, sha256))
    by_get = await client.get(
        "/graphql", params={"extensions": orjson.dumps(apq(None, sha256)["extensions"]).decode()}
    )
    for response in (third, by_get):
        assert response.status_code == 200, response.text
        assert response.json()["data"] == second.json()["data"]
    # a text that does not match its hash is refused, and not remembered
    wrong = await client.post("/graphql", json=apq("{ __typename }", "0" * 64))
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
    again = await client.post("/graphql", json=apq(None, "0" * 64))
    assert again.json()["errors"][0]["message"] == "PersistedQueryNotFound"


@pytest.fixture(scope="module")
def only_app(database_url: str) -> FastAPI:
    return create_app(
        Settings(database_url=database_url, persisted_operations_only=True), database_url
    )


@pytest.fixture
async def only_client(only_app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(only_app, admin_key) as client:
        yield client


async def test_with_catalogue_only_a_registered_document_still_does_not_run(only_client) -> None:
    sha256 = hashlib.sha256(PRODUCTS.encode()).hexdigest()
    registered = await only_client.post("/graphql", json=apq(PRODUCTS, sha256))
    by_hash = await only_client.post("/graphql", json=apq(None, sha256))
    assert registered.json()["errors"][0]["extensions"]["code"] == "PERSISTED_OPERATION_REQUIRED"
    # and, refused, it was not even stored
    assert by_hash.json()["errors"][0]["message"] == "PersistedQueryNotFound"


REQUEST_ERRORS = {
    "does not parse": {"query": "{ loanProducts { code "},
    "does not validate": {"query": "{ nope }"},
    "variables do not coerce": {
        "query": "query($n: Int!) { applicants(first: $n) { totalCount } }",
        "variables": {"n": "x"},
    },
    "a variable is missing": {"query": "query($n: Int!) { applicants(first: $n) { totalCount } }"},
}
CODES = {
    "does not parse": "GRAPHQL_PARSE_FAILED",
    "does not validate": "GRAPHQL_VALIDATION_FAILED",
    "variables do not coerce": "BAD_USER_INPUT",
    "a variable is missing": "BAD_USER_INPUT",
}


@pytest.mark.parametrize("name", list(REQUEST_ERRORS))
async def test_a_request_error_is_a_400_for_the_graphql_response_media_type(client, name) -> None:
    spec = await client.post(
        "/graphql", json=REQUEST_ERRORS[name], headers={"accept": GRAPHQL_RESPONSE}
    )
    assert spec.status_code == 400
    assert spec.headers["content-type"] == GRAPHQL_RESPONSE
    assert "data" not in spec.json()
    assert [e["extensions"]["code"] for e in spec.json()["errors"]] == [CODES[name]]
    # and stays a 200 for clients that accept only application/json, as the spec requires
    legacy = await client.post(
        "/graphql", json=REQUEST_ERRORS[name], headers={"accept": "application/json"}
    )
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == "application/json"
    assert legacy.json()["data"] is None


async def test_answers_that_ran_are_200_in_either_media_type(client) -> None:
    for query in (PRODUCTS, '{ applicants(first: 5, after: "garbage") { totalCount } }'):
        answer = await client.post(
            "/graphql", json={"query": query}, headers={"accept": GRAPHQL_RESPONSE}
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == GRAPHQL_RESPONSE
        assert "data" in answer.json()


async def test_no_error_is_plain_text(client) -> None:
    no_query = await client.post("/graphql", json={"variables": {}})
    by_get = await client.get(
        "/graphql",
        params={
            "query": 'mutation { withdrawApplication(input: {applicationId: "x", reason: "r"})'
            " { dryRun } }"
        },
    )
    for response in (no_query, by_get):
        assert response.status_code in (400, 405), response.text
        assert response.headers["content-type"] == "application/json"
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST"
        assert error["message"]


async def test_every_answer_is_private_and_not_stored(client, app) -> None:
    answers = [
        await client.post("/graphql", json={"query": PRODUCTS}),
        await client.get("/graphql", params={"query": PRODUCTS}),
        await client.post("/graphql", json={"query": "{ nope }"}),
    ]
    async with http_client(app, None) as anonymous:
        answers.append(await anonymous.post("/graphql", json={"query": PRODUCTS}))
    assert [a.headers["cache-control"] for a in answers] == ["private, no-store"] * 4
    assert answers[-1].status_code == 401


async def test_a_document_is_registered_only_for_a_key_and_only_when_valid(app, client) -> None:
    stranger = "query Stranger { loanProducts { code } }"
    invalid = "query Invalid { loanProducts { noSuchField } }"
    async with http_client(app, None) as anonymous:
        refused = await anonymous.post(
            "/graphql", json=apq(stranger, hashlib.sha256(stranger.encode()).hexdigest())
        )
    assert refused.status_code == 401
    invalid_hash = hashlib.sha256(invalid.encode()).hexdigest()
    answered = await client.post("/graphql", json=apq(invalid, invalid_hash))
    assert answered.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # neither was stored: asked by their hash, a key's client is told to send the text
    for text in (stranger, invalid):
        by_hash = await client.post(
            "/graphql", json=apq(None, hashlib.sha256(text.encode()).hexdigest())
        )
        assert by_hash.json()["errors"][0]["message"] == "PersistedQueryNotFound"


def test_registered_documents_are_capped_in_characters_largest_forgotten_first() -> None:
    registered = Registered(size=100, max_chars=1000)
    registered.register("small", "s" * 100)
    for n in range(5):
        registered.register(f"large{n}", "l" * 400)
    assert registered.chars <= 1000
    assert registered.document("small") == "s" * 100  # large ones went first
    registered.register("huge", "h" * (REGISTERED_MAX_CHARS + 1))
    assert registered.document("huge") is None
