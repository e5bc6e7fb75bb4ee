"""The short path (graph.compiled.short_path) answers a request for a known document as the
router does: the same status, media type and bytes.

A document is known once the full path has executed it. Each comparison below sends a document
text never seen before (a comment makes it new), so that its first request goes through the
router and the next ones through the short path, on the same app; the app's tally of what the
short path answered says which way each went.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
import pytest

from bench.queries import OUR_R2
from tests.api.mutation_catalogue import SETUPS, stable
from tests.api.test_compiled_payloads import document
from tests.bodies import unmetered
from tests.factories import create_product

MULTIPART = "multipart/mixed;subscriptionSpec=1.0, application/json"


def fresh(query: str) -> str:
    """The same document under a text the app has never seen."""
    return f"{query}\n# {uuid.uuid4().hex}"


async def post(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"X-Request-ID": "short-path"},
    )


def comparable(response: httpx.Response) -> tuple[int, str | None, bytes]:
    """Status, media type and body, less what is left of the caller's budget."""
    return response.status_code, response.headers.get("content-type"), unmetered(response.content)


def framing(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, response.headers.get("content-type")


def payload(response: httpx.Response, name: str) -> Any:
    body = orjson.loads(response.content)
    assert "errors" not in body, body
    return body["data"][name]


@pytest.mark.parametrize("name", list(SETUPS))
async def test_a_known_mutation_is_answered_by_the_short_path_as_by_the_router(
    app, client, engine, name
):
    # given what the mutation acts on, and its document under a text never seen
    await create_product(engine)
    values = await SETUPS[name](engine, client)
    answered = app.state.compiled.answered
    query = fresh(document(name))

    # when it is dry-run twice: first through the router, which makes the document known
    dry = {"input": values | {"dryRun": True}}
    before = answered["mutation"]
    by_router = await post(client, query, dry)
    assert answered["mutation"] == before
    by_short_path = await post(client, query, dry)
    # then the second went the short path, and both answered alike (but for new ids, times)
    assert answered["mutation"] == before + 1
    assert payload(by_short_path, name)["dryRun"] is True
    assert framing(by_router) == framing(by_short_path) == (200, "application/json")
    assert stable(orjson.loads(by_router.content)) == stable(orjson.loads(by_short_path.content))

    # when it is made through the short path and replayed through the router (a new text)
    keyed = {"input": values | {"idempotencyKey": f"short-path-{name}"}}
    made = await post(client, query, keyed)
    replayed_by_router = await post(client, fresh(document(name)), keyed)
    # and replayed through the short path
    replayed_by_short_path = await post(client, query, keyed)
    assert answered["mutation"] == before + 3

    # then all three answer the same objects the same way
    assert payload(made, name)["replayed"] is False
    assert payload(replayed_by_router, name)["replayed"] is True
    assert comparable(replayed_by_router) == comparable(replayed_by_short_path)
    first = orjson.loads(made.content)
    first["data"][name]["replayed"] = True
    assert first == orjson.loads(replayed_by_short_path.content)


@pytest.mark.parametrize(
    ("case", "refusal"),
    [
        # refused by the mutation: a userError, nothing written
        pytest.param({"idempotencyKey": "k" * 256}, "VALIDATION_FAILED", id="user-error"),
        # refused before it runs: the variables do not coerce
        pytest.param({"idempotencyKey": 42}, "BAD_USER_INPUT", id="bad-variables"),
        # the same key for another input
        pytest.param(
            {"idempotencyKey": "short-path-reused", "dryRun": False},
            "IDEMPOTENCY_KEY_REUSED",
            id="key-reused",
        ),
    ],
)
async def test_a_refused_mutation_is_refused_alike_on_both_paths(
    app, client, engine, case, refusal
):
    await create_product(engine)
    name = "recordPayment"
    values = await SETUPS[name](engine, client)
    if case.get("idempotencyKey") == "short-path-reused":
        await post(client, document(name), {"input": values | case})  # the key's first use
        values = values | {"amount": "1.00"}
    answered = app.state.compiled.answered
    # a document is known once it ran (a dry run, which keeps nothing)
    known = fresh(document(name))
    await post(client, known, {"input": values | {"dryRun": True}})
    before = answered["mutation"]
    variables = {"input": values | case}
    by_short_path = await post(client, known, variables)
    assert answered["mutation"] == before + 1
    by_router = await post(client, fresh(document(name)), variables)
    assert answered["mutation"] == before + 1
    assert comparable(by_router) == comparable(by_short_path)
    body = orjson.loads(by_short_path.content)
    codes = [e["extensions"]["code"] for e in body.get("errors", [])] + [
        e["code"] for e in ((body.get("data") or {}).get(name) or {}).get("userErrors", [])
    ]
    assert codes == [refusal], body


async def test_a_caller_accepting_a_multipart_answer_gets_the_same_answer_every_time(
    app, client, engine
):
    # given a query the short path answers whole
    await create_product(engine)
    answered = app.state.compiled.answered
    query = fresh(OUR_R2)
    first = await post(client, query, {"after": None})
    whole = answered["whole"]
    assert comparable(await post(client, query, {"after": None})) == comparable(first)
    assert answered["whole"] == whole + 1

    # when a caller that accepts a multipart answer asks it (the router answers in one part)
    answers = [
        await client.post(
            "/graphql",
            json={"query": query, "variables": {"after": None}},
            headers={"Accept": MULTIPART, "X-Request-ID": "short-path"},
        )
        for _ in range(3)
    ]

    # then every answer is the router's, the same each time (the short path answered plain
    # JSON from the second request on)
    assert answers[0].headers["content-type"].startswith("multipart/mixed")
    assert len({comparable(answer) for answer in answers}) == 1
    assert answered["whole"] == whole + 1
