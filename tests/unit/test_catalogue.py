"""The catalogue of operations, the tools made of it, and the README's GraphQL examples.

Every catalogue file is one described, named operation valid against the schema; every
mutation of the schema has one; a tool's JSON schema says exactly what its operation's
variables say; and every ```graphql block of the README validates too.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from graphql import GraphQLInputObjectType, GraphQLNonNull, Undefined, parse, validate
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from graph.agents.catalogue import OPERATIONS, CatalogueError, catalogue, load
from graph.agents.mcp_server import manifest
from graph.permissions import required_permissions
from graph.schema import schema
from lending.access import Permission, Role, role_may
from tests.conftest import ROOT

GRAPHQL = schema._schema
CATALOGUE = catalogue(GRAPHQL)
TOOLS = CATALOGUE.tools()


def test_every_mutation_and_the_reads_an_agent_needs_are_in_the_catalogue() -> None:
    assert GRAPHQL.mutation_type is not None
    called = {
        selection.name.value
        for op in CATALOGUE.operations
        for selection in parse(op.document).definitions[0].selection_set.selections
    }
    assert set(GRAPHQL.mutation_type.fields) <= called
    assert {
        "application",
        "applications",
        "loan",
        "overdueInstallments",
        "auditTrail",
        "previewSchedule",
        "loanEvents",
    } <= called
    assert len(CATALOGUE.operations) == len(list(OPERATIONS.glob("*.graphql")))


def test_a_persisted_operation_is_sent_by_the_sha256_of_its_file() -> None:
    for op in CATALOGUE.operations:
        assert (
            op.sha256
            == hashlib.sha256((OPERATIONS / f"{op.name}.graphql").read_bytes()).hexdigest()
        )
        assert CATALOGUE.document(f"sha256:{op.sha256.upper()}") == op.document


@pytest.mark.parametrize("operation", CATALOGUE.operations, ids=lambda op: op.name)
def test_each_tool_schema_is_its_operations_variables(operation) -> None:
    Draft202012Validator.check_schema(operation.input_schema)
    [definition] = [d for d in parse(operation.document).definitions]
    variables = {v.variable.name.value: v for v in definition.variable_definitions}
    properties = operation.input_schema["properties"]
    if operation.takes_input:
        input_type = GRAPHQL.get_type(definition.variable_definitions[0].type.type.name.value)
        assert isinstance(input_type, GraphQLInputObjectType)
        assert list(properties) == list(input_type.fields)
        required = [
            name
            for name, f in input_type.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
        ]
        for name, f in input_type.fields.items():
            assert properties[name]["description"].startswith(f.description)
    else:
        assert list(properties) == list(variables)
        required = [
            name
            for name, v in variables.items()
            if v.type.kind == "non_null_type" and v.default_value is None
        ]
        for name, v in variables.items():
            assert "description" in properties[name], name
            if v.default_value is not None:
                assert "default" in properties[name]
    assert operation.input_schema.get("required", []) == required
    assert operation.input_schema["additionalProperties"] is False


def test_tool_schemas_accept_real_calls_and_refuse_wrong_ones() -> None:
    apply = Draft202012Validator(CATALOGUE.by_name["apply_for_loan"].input_schema)
    call = {
        "applicant": {"fullName": "Ada", "email": "ada@example.com"},
        "productCode": "PERSONAL-USD",
        "amount": "5000",
        "termMonths": 12,
        "dryRun": True,
        "idempotencyKey": None,
    }
    apply.validate(call)
    for wrong in ({**call, "amount": 5000.5}, {**call, "colour": "red"}, {"amount": "1"}):
        with pytest.raises(ValidationError):
            apply.validate(wrong)
    overdue = Draft202012Validator(CATALOGUE.by_name["overdue_installments"].input_schema)
    overdue.validate({"asOf": "2026-12-01", "first": 10})
    with pytest.raises(ValidationError):
        overdue.validate({"first": 10})


def test_roles_are_those_whose_permissions_cover_every_field() -> None:
    roles = {op.name: op.roles for op in CATALOGUE.operations}
    assert Role.AGENT not in roles["decide_application"]
    assert roles["decide_application"] == {Role.ADMIN, Role.UNDERWRITER}
    assert roles["record_payment"] == {Role.ADMIN, Role.SERVICER}
    assert roles["get_loan"] == set(Role)
    for op in CATALOGUE.operations:
        for role in Role:
            assert (role in op.roles) == all(
                role_may(role, p) for p in _root_permissions(op.document)
            ), (op.name, role)


def _root_permissions(document: str) -> set[Permission]:
    """The permissions of the root fields a document calls (nested fields are not guarded)."""
    [operation] = parse(document).definitions
    root = GRAPHQL.get_root_type(operation.operation)
    found: set[Permission] = set()
    for selection in operation.selection_set.selections:
        found |= required_permissions(root.fields[selection.name.value]) or set()
    return found


def test_manifests() -> None:
    mcp = manifest(CATALOGUE, "mcp", Role.AGENT)
    assert "decide_application" not in {t["name"] for t in mcp}
    assert all({"name", "description", "inputSchema", "annotations"} <= t.keys() for t in mcp)
    openai = manifest(CATALOGUE, "openai")
    assert [t["function"]["name"] for t in openai] == [op.name for op in TOOLS]
    assert all(t["type"] == "function" and t["function"]["parameters"] for t in openai)
    assert "loan_events" not in {t["function"]["name"] for t in openai}  # a stream, not a tool


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("query A { loanProducts { code } }", "start with '#'"),
        ("# two\nquery A { loanProducts { code } }\nquery B { loanProducts { code } }", "exactly"),
        ("# anonymous\n{ loanProducts { code } }", "exactly one named"),
        ("# unknown field\nquery A { loanProducts { colour } }", "colour"),
    ],
)
def test_a_bad_catalogue_file_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.graphql"
    path.write_text(text)
    with pytest.raises(CatalogueError, match=problem):
        load(GRAPHQL, path)


README_BLOCKS = re.findall(r"```graphql\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


def test_the_readme_has_examples() -> None:
    assert len(README_BLOCKS) >= 5


@pytest.mark.parametrize("block", README_BLOCKS, ids=lambda b: b.split("{")[0].strip()[:40])
def test_every_readme_example_validates(block: str) -> None:
    assert validate(GRAPHQL, parse(block)) == []
