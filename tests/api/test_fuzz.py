"""Fuzzing: operations generated from the schema, odd scalars included, never fail the server."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date
from typing import Any

import httpx
import pytest
from graphql import GraphQLSchema, ValueNode
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

from db.listener import EventListener
from graph.ids import to_global_id
from graph.node import TABLES
from graph.schema import schema
from tests.dbfixtures import admin_context, gql
from tests.examples import collect
from tests.factories import create_application, create_loan, create_product, pay

SDL = schema.as_str()
# The subscription root as a query root: hypothesis-graphql writes queries only, and a query's
# text with `subscription` before it is a subscription of the real schema.
SUBSCRIPTION_ROOT = GraphQLSchema(
    query=schema._schema.subscription_type, types=list(schema._schema.type_map.values())
)

# Found by this fuzzer: a non-null root field failing while a sibling is still querying.
FAILING_ROOT_FIELD = """
query Failing($id: ID!) { node(id: $id) { id } auditTrail(entityId: $id) { totalCount } }
"""
PRODUCTS = "{ loanProducts { code } }"
# Found by this fuzzer: PostgreSQL text cannot hold NUL.
WITHDRAW = """
mutation Withdraw($input: WithdrawApplicationInput!) {
  withdrawApplication(input: $input) { replayed userErrors { code field message } }
}
"""

VALID_OPERATIONS = 200
INVALID_OPERATIONS = 100  # each breaks the schema once: wrong type, missing argument, bad enum

HUGE = st.integers(min_value=-(10**40), max_value=10**40)
GARBAGE = st.text(max_size=30)


def as_strings(*strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[ValueNode]:
    return st.one_of(*strategies).map(nodes.String)


def decimals() -> st.SearchStrategy[ValueNode]:
    odd = ["0", "-0", "25000.00", "0.001", "1e6", "1E+999999999", "NaN", "sNaN", "-Infinity"]
    return st.one_of(
        as_strings(
            st.sampled_from([*odd, " 12 ", "12,50", "١٢٣", ""]),
            st.decimals(allow_nan=True, allow_infinity=True),
            HUGE,
            GARBAGE,
        ),
        HUGE.map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    )


def dates() -> st.SearchStrategy[ValueNode]:
    odd = ["0001-01-01", "9999-12-31", "2024-02-30", "2024-1-1", "20240101", "today"]
    return st.one_of(
        as_strings(st.dates().map(date.isoformat), st.sampled_from(odd), GARBAGE),
        HUGE.map(nodes.Int),
    )


def datetimes() -> st.SearchStrategy[ValueNode]:
    odd = ["2024-01-01T00:00:00", "2024-01-01T25:00:00Z", "9999-12-31T23:59:59+14:00", "now"]
    return st.one_of(
        as_strings(
            st.datetimes(timezones=st.sampled_from([None, UTC])).map(lambda d: d.isoformat()),
            st.sampled_from(odd),
            GARBAGE,
        ),
        HUGE.map(nodes.Int),
    )


def subscriptions(
    custom_scalars: dict[str, st.SearchStrategy[ValueNode]], mode: Mode = Mode.POSITIVE
) -> st.SearchStrategy[str]:
    """Generated subscription documents (valid, or each broken once in NEGATIVE mode)."""
    return from_schema(SUBSCRIPTION_ROOT, custom_scalars=custom_scalars, mode=mode).map(
        lambda query: f"subscription {query}"
    )


def ids(existing: list[str]) -> st.SearchStrategy[ValueNode]:
    type_names = st.sampled_from([*TABLES, "Nope"])
    keys = st.integers(min_value=-5, max_value=2**64)
    return st.one_of(
        as_strings(
            st.sampled_from(existing),
            st.builds(to_global_id, type_names, keys),
            GARBAGE,
        ),
        HUGE.map(nodes.Int),
    )


async def seed_data(engine, product_code: str = "PERSONAL-USD") -> list[str]:
    """A product, an application, a disbursed loan with a payment; their global ids."""
    product = await create_product(engine, code=product_code)
    application = await create_application(engine)
    loan = await create_loan(engine, disbursed_on=date(2024, 1, 10))
    paid = await pay(engine, loan.id, "150.00", date(2024, 2, 10))
    return [
        to_global_id("LoanProduct", product.id),
        to_global_id("LoanApplication", application.id),
        to_global_id("Applicant", application.applicant_id),
        to_global_id("Loan", loan.id),
        to_global_id("Payment", paid.payment.id),
    ]


def server_failure(response: httpx.Response) -> bool:
    if response.status_code >= 500:
        return True
    try:
        body = response.json()
    except ValueError:
        return False
    errors = body.get("errors") if isinstance(body, dict) else None
    return any(
        (error.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"
        for error in errors or []
    )


async def test_generated_operations_never_fail_the_server(client, engine):
    # given some data for the generated ids to find
    existing = await seed_data(engine)
    scalars = {"Decimal": decimals(), "Date": dates(), "DateTime": datetimes(), "ID": ids(existing)}
    started = time.perf_counter()
    operations = collect(
        from_schema(SDL, custom_scalars=scalars), VALID_OPERATIONS, seed_value=20240101
    ) + collect(
        from_schema(SDL, custom_scalars=scalars, mode=Mode.NEGATIVE),
        INVALID_OPERATIONS,
        seed_value=20240102,
    )

    # when each is sent
    generated = time.perf_counter()
    failures = []
    for operation in operations:
        response = await client.post("/graphql", json={"query": operation})
        if server_failure(response):
            failures.append(f"{operation}\n→ {response.status_code} {response.text}")
    print(
        f"fuzz: {len(operations)} operations, generated in {generated - started:.1f} s, "
        f"sent in {time.perf_counter() - generated:.1f} s"
    )

    # then none made the server fail
    assert not failures, f"{len(failures)} operations failed the server:\n\n" + "\n\n".join(
        failures[:5]
    )


VALID_SUBSCRIPTIONS = 60
INVALID_SUBSCRIPTIONS = 30


async def test_generated_subscriptions_never_fail_the_server(app, client, engine, database_url):
    # given some data, and generated subscriptions (ids real, forged or garbage)
    existing = await seed_data(engine)
    scalars = {"Decimal": decimals(), "Date": dates(), "DateTime": datetimes(), "ID": ids(existing)}
    documents = collect(subscriptions(scalars), VALID_SUBSCRIPTIONS, seed_value=20261202) + collect(
        subscriptions(scalars, Mode.NEGATIVE), INVALID_SUBSCRIPTIONS, seed_value=20261203
    )
    # and one that hears every event, whatever the draws: the event is known to have been sent
    documents.append("subscription { loanEvents { type applicationId } }")
    failures = []
    # when each is sent over plain HTTP, then it is refused cleanly
    for document in documents:
        response = await client.post("/graphql", json={"query": document})
        if server_failure(response) or response.status_code not in (200, 400):
            failures.append(f"{document}\n→ {response.status_code} {response.text}")
    # and when each runs as a WebSocket runs it, neither subscribing nor an event fails it
    events = EventListener(database_url)
    try:
        streams = [
            await app.state.schema.subscribe(
                document, context_value=admin_context(app, events, f"fuzz-{number}")
            )
            for number, document in enumerate(documents)
        ]
        waiting = [asyncio.ensure_future(anext(stream)) for stream in streams]
        await asyncio.sleep(0.5)
        await create_application(engine)  # an event for every unfiltered subscriber
        done, pending = await asyncio.wait(waiting, timeout=10)
        for task in pending:  # filtered on another application: no event for them
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    finally:
        await events.close()
    for task in done:
        number = waiting.index(task)
        result = task.result()
        codes = [(e.extensions or {}).get("code") for e in result.errors or ()]
        if "INTERNAL_SERVER_ERROR" in codes:
            failures.append(f"{documents[number]}\n→ {result.errors}")
    assert any(task.result().data for task in done), "some subscriptions heard the event"
    assert not failures, f"{len(failures)} subscriptions failed the server:\n\n" + "\n\n".join(
        failures[:5]
    )


async def test_a_failed_root_field_leaves_the_next_request_working(client, engine):
    # given a product, whose id auditTrail refuses
    product = await create_product(engine)
    product_id = to_global_id("LoanProduct", product.id)

    for _ in range(5):
        # when an operation fails on auditTrail while node(id:) is loading the product
        failed = await gql(client, FAILING_ROOT_FIELD, {"id": product_id})
        assert failed["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

        # then the next request is served
        response = await client.post("/graphql", json={"query": PRODUCTS})
        assert response.status_code == 200, response.text


async def test_an_idempotency_key_with_nul_is_a_validation_error(client):
    body = await gql(
        client,
        WITHDRAW,
        {"input": {"applicationId": "x", "idempotencyKey": "key\u0000", "reason": "test"}},
    )
    assert "errors" not in body, body
    assert body["data"]["withdrawApplication"]["userErrors"] == [
        {
            "code": "VALIDATION_FAILED",
            "field": ["input", "idempotencyKey"],
            "message": "Text must not contain NUL or unpaired UTF-16 surrogates.",
        }
    ]


APPLY = """
mutation Apply($input: ApplyForLoanInput!) {
  applyForLoan(input: $input) { userErrors { code field } }
}
"""


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"productCode": "P\u0000"}, "productCode"),
        ({"purpose": "car\u0000"}, "purpose"),
        ({"applicant": {"fullName": "A", "email": "a\u0000@example.com"}}, "applicant.email"),
    ],
)
async def test_nul_anywhere_in_a_mutation_input_is_a_validation_error(
    client, engine, changes, field
):
    # given an otherwise valid application input
    await create_product(engine)
    data = {
        "applicant": {"fullName": "Ada Obi", "email": "ada@example.com"},
        "productCode": "PERSONAL-USD",
        "amount": "1000.00",
        "termMonths": 12,
    } | changes

    # when it is sent with a NUL in one string
    body = await gql(client, APPLY, {"input": data})

    # then that field is named, and nothing is written
    assert body["data"]["applyForLoan"]["userErrors"] == [
        {"code": "VALIDATION_FAILED", "field": ["input", *field.split(".")]}
    ]
    async with engine.connect() as conn:
        assert (await conn.exec_driver_sql("SELECT count(*) FROM applicants")).scalar() == 0


@pytest.mark.parametrize(
    "query",
    [
        '{ applications(filter: {applicantEmail: "a\\u0000b"}) { totalCount } }',
        '{ applications(filter: {productCode: "P\\u0000"}) { totalCount } }',
        '{ applicants(filter: {nameContains: "\\u0000"}) { totalCount } }',
    ],
)
async def test_nul_in_a_query_filter_is_a_client_error(client, query):
    body = await gql(client, query)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "NUL" in body["errors"][0]["message"]
