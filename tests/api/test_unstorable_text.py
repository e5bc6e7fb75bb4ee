"""Text no database can store (NUL, lone UTF-16 surrogates) is bad input wherever it is sent:
VALIDATION_FAILED on the field of a mutation's input, BAD_USER_INPUT on a query's arguments,
literal or variable, compiled or not; nothing is written, nothing fails on the server.

The lone surrogate was an INTERNAL_SERVER_ERROR (UnicodeEncodeError hashing the input of
applyForLoan, or encoding a filter for PostgreSQL); NUL in a query argument other than a
filter (previewSchedule's productCode, found by schemathesis) was one too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from tests.api.operations import APPLY, apply_input
from tests.factories import create_product

SURROGATE, NUL = "x\ud800y", "x\x00y"


async def post(client, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST with JSON's own escapes (a lone surrogate cannot be sent as UTF-8)."""
    body = json.dumps({"query": query, "variables": variables or {}})  # ensure_ascii
    response = await client.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
@pytest.mark.parametrize(
    ("where", "field"),
    [
        ({"applicant": {"fullName": "?", "email": "ada@example.com"}}, "applicant.fullName"),
        ({"purpose": "?"}, "purpose"),
        ({"idempotencyKey": "?"}, "idempotencyKey"),
    ],
)
async def test_a_mutation_refuses_it_on_the_field(client, engine, bad, where, field) -> None:
    await create_product(engine)
    changes = json.loads(json.dumps(where).replace("?", bad.replace("\x00", "\\u0000")))
    body = await post(client, APPLY, {"input": apply_input() | changes})
    assert "errors" not in body, body
    assert body["data"]["applyForLoan"]["userErrors"] == [
        {
            "code": "VALIDATION_FAILED",
            "field": ["input", *field.split(".")],
            "message": "Text must not contain NUL or unpaired UTF-16 surrogates.",
        }
    ]
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM applicants"))).scalar() == 0


QUERIES = [
    # compiled on the short path
    ("query($n: String) { applicants(filter: { nameContains: $n }) { totalCount } }", "$n"),
    (
        "query($f: ApplicantFilterInput) { applicants(filter: $f) { totalCount } }",
        "$f.nameContains",
    ),
    ("query($e: String) { applications(filter: { applicantEmail: $e }) { totalCount } }", "$e"),
    ("query($id: ID!) { node(id: $id) { id } }", "$id"),
    # resolved field by field, with a payload of its own
    (
        'query($c: String) { previewSchedule(input: { productCode: $c, amount: "100",'
        " termMonths: 12 }) { userErrors { code } } }",
        "$c",
    ),
]


@pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
@pytest.mark.parametrize(("query", "where"), QUERIES)
async def test_a_query_refuses_it_as_bad_user_input(client, bad, query, where) -> None:
    variable = where.split(".")[0][1:]
    value: Any = bad
    if where.count("."):
        value = {where.split(".")[1]: bad}
    body = await post(client, query, {variable: value})
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == f"`{where}` must not contain NUL or unpaired UTF-16 surrogates."


@pytest.mark.parametrize(
    "query",
    [
        '{ applicants(filter: { nameContains: "a\\u0000b" }) { totalCount } }',
        '{ previewSchedule(input: { productCode: "\\u0000?", amount: "1", termMonths: -1 })'
        " { userErrors { code } } }",
        '{ ...F } fragment F on Query { applicants(filter: { email: "\\u0000" }) { totalCount } }',
        # found by the differential test: a default the executed selection never reads
        'query($f: ApplicationFilterInput = { productCode: "\\u0000" }) { node(id: "TG9hbjo5") {'
        " ... on Applicant { applications(filter: $f) { totalCount } } } }",
    ],
)
async def test_a_literal_in_the_document_is_refused_too(client, query) -> None:
    body = await post(client, query)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert "must not contain NUL" in error["message"]
