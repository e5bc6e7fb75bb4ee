"""Query limits: abusive documents are refused before execution, and production hides the schema.

Each refusal's wall time is printed; run with ``-s`` to see it. Nothing asserts on time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from graph.server.app import create_app
from graph.server.settings import Settings
from tests.dbfixtures import gql
from tests.factories import create_application, create_product

LIMITS = Settings()

# Loan → application → loan → … : a selection 50 levels deep.
DEEP = '{ loan(id: "TG9hbjox") ' + "{ application { loan " * 24 + "{ id }" + " } }" * 24 + " }"

MANY_ALIASES = "{ " + " ".join(f"a{i}: __typename" for i in range(1000)) + " }"

# 12 KB, within the document length limit.
MANY_TOKENS = "{ " + "a " * 6_000 + "}"
# Just under the 1 MiB body limit (a larger body is refused before it is parsed: HTTP 413).
LONG_DOCUMENT = "{ " + "__typename " * 90_000 + "}"

HUGE_PAGE = "{ applicants(first: 1000000) { edges { node { fullName } } } }"

NESTED_CONNECTIONS = """
{
  applicants(first: 100) { edges { node {
    applications(first: 100) { edges { node { reference } } }
    loans(first: 100) { edges { node {
      payments(first: 100) { edges { node { amount } } }
    } } }
  } } }
}
"""
# 100 × (edges 1 + node 1 + 100 × 2 + 100 × (1 + 1 + 100 × 2))
NESTED_CONNECTIONS_COST = 2_040_200

# Variables, a variable's default, a fragment, a default `first` and a plain list, together.
SAMPLE = """
query Sample($applications: Int) {
  loanProducts { code }
  applicants(first: 5) { totalCount edges { cursor node { ...Person } } }
}
fragment Person on Applicant {
  fullName
  applications(first: $applications) { edges { node {
    reference product { code } decisions { outcome }
  } } }
  loans { pageInfo { hasNextPage } }
}
"""
# loanProducts 100 × 1 + 5 × (edges 1 + node 1
#   + 3 × (edges 1 + node 1 + product 1 + decisions 2 × 1) + loans 20 × pageInfo 1)
SAMPLE_COST = 100 + 5 * (1 + 1 + 3 * 5 + 20 * 1)

INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_INTROSPECTION = '{ __type(name: "Loan") { name } }'
TYPENAME = "{ __typename }"
MISSPELT = "{ loanProduct { code } }"
UNKNOWN_FRAGMENT = "{ ...Missing }"


async def refused(
    client: httpx.AsyncClient, label: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST ``query``; print how long the answer took; return the body."""
    started = time.perf_counter()
    body = await gql(client, query, variables)
    print(f"{label}: answered in {(time.perf_counter() - started) * 1000:.1f} ms")
    assert body.get("data") is None, body
    return body


@pytest.fixture
async def production_client(database_url: str, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app as configured for production (introspection left at its default)."""
    settings = Settings(
        database_url=database_url,
        lending_env="production",
        introspection=None,
        metrics_token="m" * 32,
    )
    app = create_app(settings, database_url)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as client:
        yield client
    await app.state.engine.dispose()


async def test_a_deep_query_is_refused(client):
    body = await refused(client, "depth 50", DEEP)
    messages = [error["message"] for error in body["errors"]]
    assert f"'anonymous' exceeds maximum operation depth of {LIMITS.max_query_depth}" in messages


async def test_a_thousand_aliases_are_refused(client):
    body = await refused(client, "1,000 aliases", MANY_ALIASES)
    [error] = body["errors"]
    assert error["message"] == f"1000 aliases found. Allowed: {LIMITS.max_aliases}"


async def test_six_thousand_tokens_are_refused(client):
    body = await refused(client, "6,000 tokens", MANY_TOKENS)
    [error] = body["errors"]
    assert f"more than {LIMITS.max_tokens} tokens" in error["message"]


async def test_a_document_of_a_megabyte_is_refused_before_it_is_parsed(client):
    body = await refused(client, "990 KB", LONG_DOCUMENT)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert f"Allowed: {LIMITS.max_document_chars}" in error["message"]


async def test_a_huge_page_is_refused_by_the_resolver(client):
    body = await refused(client, "first: 1000000", HUGE_PAGE)
    [error] = body["errors"]
    assert error["message"] == "`first` must be between 0 and 100; got 1000000."
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    # and the cost walk counted the page as the largest allowed one
    assert body["extensions"]["cost"]["requestedNodes"] == 100 * 2


async def test_a_page_size_of_the_wrong_type_is_a_validation_error(client):
    body = await refused(
        client,
        "first: $f = 'many'",
        "query($f: Int) { applicants(first: $f) { edges { node { fullName } } } }",
        {"f": "many"},
    )
    [error] = body["errors"]
    assert "Int cannot represent non-integer value" in error["message"]


async def test_deeply_nested_connections_are_refused_before_execution(client, sql):
    body = await refused(client, "nested connections", NESTED_CONNECTIONS)
    [error] = body["errors"]
    assert error["message"].startswith(
        f"Query cost {NESTED_CONNECTIONS_COST} exceeds the limit of {LIMITS.max_query_cost}"
    )
    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX"}
    assert body["extensions"]["cost"] == {
        "requestedNodes": NESTED_CONNECTIONS_COST,
        "limit": LIMITS.max_query_cost,
    }
    # and no resolver ran (authentication happens before the GraphQL layer)
    assert not [s for s in sql.statements if "applicants" in s]


async def test_the_cost_of_a_nested_query_is_returned(client, engine):
    # given an applicant with an application
    await create_product(engine)
    await create_application(engine, full_name="Ada Lovelace")

    # when a query with connections, a fragment and variables runs
    body = await gql(client, SAMPLE, {"applications": 3})

    # then it succeeds and reports its cost
    assert "errors" not in body, body
    [edge] = body["data"]["applicants"]["edges"]
    assert edge["node"]["fullName"] == "Ada Lovelace"
    cost = body["extensions"]["cost"]
    assert cost["requestedNodes"] == SAMPLE_COST
    assert cost["limit"] == LIMITS.max_query_cost
    # and what it took from the key's budget
    assert cost["requestedQueryCost"] == SAMPLE_COST
    assert cost["throttleStatus"]["currentlyAvailable"] < cost["throttleStatus"]["maximumAvailable"]


@pytest.mark.parametrize(
    ("query", "variables", "cost"),
    [
        ("query($n: Int = 7) { applicants(first: $n) { edges { node { id } } } }", None, 7 * 2),
        ("query($n: Int) { applicants(first: $n) { edges { node { id } } } }", {"n": 100.0}, 200),
        ("{ applicants(first: 0) { edges { node { id } } } }", None, 0),
        # a page read from the end counts by `last` the same way
        ("query($n: Int) { applicants(last: $n) { edges { node { id } } } }", {"n": 9}, 9 * 2),
        ("{ applicants(first: null, last: 3) { edges { node { id } } } }", None, 3 * 2),
        (
            "{ applicants(last: 1) { edges { node {"
            " loans(last: 4) { edges { node { id } } } } } } }",
            None,
            1 * (1 + 1 + 4 * 2),
        ),
        (
            '{ nodes(ids: ["TG9hbjox", "TG9hbjoy", "TG9hbjoz"]) '
            "{ ... on Loan { application { id } } } }",
            None,
            3 * 2,
        ),
        ("{ __typename applicants { totalCount } }", None, 0),
        # plain lists count by the most they can hold: 2 decisions, 2,600 instalments
        ("{ applications(first: 10) { edges { node { decisions { outcome } } } } }", None, 40),
        (
            "{ loans(first: 10) { edges { node { schedule { installments { number } } } } } }",
            None,
            10 * (1 + 1 + (1 + 2600 * 1)),
        ),
    ],
)
async def test_the_cost_follows_arguments_and_variables(client, query, variables, cost):
    body = await gql(client, query, variables)
    assert "errors" not in body, body
    assert body["extensions"]["cost"]["requestedNodes"] == cost


async def test_a_query_within_the_limits_runs(client, engine):
    await create_product(engine)
    await create_application(engine, full_name="Grace Hopper")
    body = await gql(
        client,
        "{ applicants(first: 100) { totalCount edges { node { fullName "
        "applications(first: 100) { edges { node { reference status } } } } } } }",
    )
    assert "errors" not in body, body
    assert body["data"]["applicants"]["totalCount"] == 1
    assert body["extensions"]["cost"]["requestedNodes"] == 100 * (2 + 100 * 2)


async def test_an_unknown_fragment_is_reported_as_such(client):
    body = await refused(client, "unknown fragment", UNKNOWN_FRAGMENT)
    [error] = body["errors"]
    assert error["message"] == "Unknown fragment 'Missing'."


async def test_introspection_works_in_development(client):
    body = await gql(client, INTROSPECTION)
    assert body["data"] == {"__schema": {"queryType": {"name": "Query"}}}


@pytest.mark.parametrize("query", [INTROSPECTION, TYPE_INTROSPECTION])
async def test_introspection_is_refused_in_production(production_client, query):
    body = await refused(production_client, "introspection in production", query)
    assert body["errors"]
    assert all("introspection has been disabled" in e["message"] for e in body["errors"])


async def test_typename_still_works_in_production(production_client):
    body = await gql(production_client, TYPENAME)
    assert body["data"] == {"__typename": "Query"}


async def test_suggestions_are_shown_in_development(client):
    body = await gql(client, MISSPELT)
    [error] = body["errors"]
    assert error["message"] == (
        "Cannot query field 'loanProduct' on type 'Query'. Did you mean 'loanProducts'?"
    )


async def test_suggestions_are_hidden_in_production(production_client):
    body = await gql(production_client, MISSPELT)
    [error] = body["errors"]
    assert error["message"] == "Cannot query field 'loanProduct' on type 'Query'."


def test_every_plain_list_of_objects_has_a_bound():
    from graphql import GraphQLList, GraphQLObjectType, get_named_type, get_nullable_type

    from graph.limits import LIST_BOUNDS
    from graph.schema import schema

    unbounded = []
    for type_ in schema._schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            listed = get_nullable_type(field.type)
            if not isinstance(listed, GraphQLList) or "ids" in field.args:
                continue
            if name in ("edges", "userErrors"):  # counted by `first`; by USER_ERRORS
                continue
            is_object = isinstance(get_named_type(field.type), GraphQLObjectType)
            if is_object and (type_.name, name) not in LIST_BOUNDS:
                unbounded.append(f"{type_.name}.{name}")
    assert unbounded == []
