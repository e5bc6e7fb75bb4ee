"""A mutation's payload objects are read by the compiled path (one statement each), and answer
exactly what the per-field path answers: for every mutation of the catalogue, with its own
selection and with generated ones, committed, replayed and dry-run; the compiled app answers
the generated ones by its short path (a dry run makes each document known first).

Two executions of one input cannot be compared directly (each makes its own rows, references
and times), so the committed comparison uses the idempotency record: the call is made through
one path, then replayed with the same key through the other, which reads the very same objects.
Dry runs, whose rows vanish, are compared on what two runs share (``VOLATILE`` aside).
"""

from __future__ import annotations

import os
from random import Random
from typing import Any

import pytest

from graph.schema import schema
from tests.api.mutation_catalogue import INPUTS, OBJECTS, SETUPS, stable
from tests.api.read_queries import _Document, pools_of
from tests.dbfixtures import gql
from tests.factories import create_product

GENERATED = int(os.environ.get("DIFF_GENERATED_PAYLOADS", "3"))  # per mutation
# Added to each object's selection: something past the object's own row (a relation, a value
# computed from other rows), which the compiled path reads, where the row alone would do.
PAST_THE_ROW = {
    "LoanApplication": "applicant { email }",
    "Loan": "payoffAmount applicant { fullName }",
    "Decision": "application { status }",
    "Payment": "allocations { principal interest }",
    "Reminder": "installment { number }",
}


def payload_objects(name: str) -> list[tuple[str, str]]:
    """(field, type name) of each object field of mutation ``name``'s payload."""
    mutation = schema._schema.mutation_type
    assert mutation is not None
    payload = mutation.fields[name].type.of_type  # Payload!
    return [
        (field_name, field.type.name)
        for field_name, field in payload.fields.items()
        if hasattr(field.type, "fields")
    ]


def document(name: str, selection: str | None = None) -> str:
    if selection is None:
        further = [f"{f} {{ {PAST_THE_ROW[t]} }}" for f, t in payload_objects(name)]
        selection = " ".join([OBJECTS[name], *further])
    return (
        f"mutation Payload($input: {INPUTS[name]}!) {{ {name}(input: $input) {{ "
        f"{selection} userErrors {{ code field message }} replayed dryRun }} }}"
    )


def generated(name: str, seed: int, pools: Any) -> tuple[str, dict[str, Any]]:
    """Mutation ``name`` with a generated selection of each payload object (and the variables
    and fragments it needs)."""
    made = _Document(Random(seed), schema._schema, pools)
    parts = [
        f"{field} {made.selection(type_name, 1)}" for field, type_name in payload_objects(name)
    ]
    made.variables["input"] = (f"{INPUTS[name]}!", {}, False)
    root = f"{name}(input: $input) {{ {' '.join(parts)} userErrors {{ code }} replayed dryRun }}"
    return made.text([root], kind="mutation")


def without_compiled(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    compiled = body.get("extensions", {}).pop("compiled", [])
    if not body.get("extensions"):
        body.pop("extensions", None)
    return body, compiled


async def made_then_replayed(
    first: Any, then: Any, name: str, query: str, variables: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The answers of a call through ``first`` and of its replay through ``then`` (errors of
    a generated selection's arguments, such as a forged cursor, included: both paths must
    give the same)."""
    made = await gql(first, query, variables)
    replayed = await gql(then, query, variables)
    payload = made["data"][name]
    assert payload["userErrors"] == [], payload
    assert payload["replayed"] is False
    assert replayed["data"][name]["replayed"] is True
    replayed["data"][name]["replayed"] = False
    return made, replayed


@pytest.mark.parametrize("order", ["compiled first", "per field first"])
@pytest.mark.parametrize("name", list(SETUPS))
async def test_a_payload_reads_alike_on_both_paths(client, per_field_client, engine, name, order):
    # given what the mutation acts on
    await create_product(engine)
    values = await SETUPS[name](engine, client)
    variables = {"input": values | {"idempotencyKey": f"payload-{name}"}}
    compiled_client, per_field = client, per_field_client
    first, then = (
        (compiled_client, per_field) if order == "compiled first" else (per_field, compiled_client)
    )

    # when it is called through one path and replayed through the other
    made, replayed = await made_then_replayed(first, then, name, document(name), variables)
    assert made.get("errors") is None, made

    # then both answer the same objects the same way
    made, made_compiled = without_compiled(made)
    replayed, replayed_compiled = without_compiled(replayed)
    assert made == replayed
    # and the compiled app read the payload's objects by the compiled path
    assert made_compiled if order == "compiled first" else replayed_compiled, (made, replayed)


@pytest.mark.parametrize("name", list(SETUPS))
async def test_generated_payload_selections_read_alike_on_both_paths(
    app, client, per_field_client, engine, database_url, name
):
    await create_product(engine)
    compiled = 0
    answered = app.state.compiled.answered
    short_path = answered["mutation"]
    for seed in range(GENERATED):
        values = await SETUPS[name](engine, client)
        if name == "applyForLoan":  # an applicant has one open application at a time
            values["applicant"] = values["applicant"] | {"email": f"generated{seed}@example.com"}
        pools = await pools_of(database_url)
        query, variables = generated(name, 2026_12_03 + seed, pools)
        variables["input"] = values | {"idempotencyKey": f"generated-{name}-{seed}"}
        first, then = (client, per_field_client) if seed % 2 else (per_field_client, client)
        # a dry run first (keeping nothing): the compiled app then knows the document, and
        # answers the call or its replay by the short path (graph.compiled.short_path)
        await gql(client, query, variables | {"input": values | {"dryRun": True}})
        made, replayed = await made_then_replayed(first, then, name, query, variables)
        (made, made_keys), (replayed, replayed_keys) = (
            without_compiled(made),
            without_compiled(replayed),
        )
        assert made == replayed, query
        compiled += bool(made_keys or replayed_keys)
    # most generated selections reach past the objects' rows, and so are read compiled
    assert compiled >= GENERATED // 4, (compiled, GENERATED)
    assert answered["mutation"] - short_path >= GENERATED  # one of each two calls, at least


@pytest.mark.parametrize("name", list(SETUPS))
async def test_a_dry_runs_payload_reads_alike_on_both_paths(client, per_field_client, engine, name):
    # given what the mutation acts on
    await create_product(engine)
    values = await SETUPS[name](engine, client)
    variables = {"input": values | {"dryRun": True}}

    # when it is dry-run through each path (nothing is kept: both act on the same rows)
    compiled, compiled_keys = without_compiled(await gql(client, document(name), variables))
    per_field, _ = without_compiled(await gql(per_field_client, document(name), variables))

    # then both answer the same, but for what two runs cannot share (new ids, times)
    assert compiled["data"][name]["dryRun"] is True, compiled
    assert stable(compiled) == stable(per_field)
    # and the dry run's objects were read through its own transaction, by the compiled path
    assert compiled_keys, compiled


async def test_a_payload_of_its_own_rows_only_costs_no_statement(client, engine, sql):
    # given an application to decide
    await create_product(engine)
    values = await SETUPS["decideApplication"](engine, client)

    # when the payload selects only columns of the rows the decision wrote
    sql.statements.clear()
    body = await gql(
        client,
        document("decideApplication", "application { id status version } loan { id status }"),
        {"input": values},
    )

    # then they come from the written rows: no compiled read, no statement to read them back
    assert body["data"]["decideApplication"]["userErrors"] == []
    assert "compiled" not in body.get("extensions", {})
    assert not [s for s in sql.statements if s.lstrip().upper().startswith("SELECT coalesce(")]
