"""Every field a compiled read can reach declares what it reads (or its root falls back)."""

from __future__ import annotations

from graphql import GraphQLInterfaceType, GraphQLObjectType, get_named_type

from graph.compiled.reads import READS
from graph.schema import schema

# Query fields answered per field only, and why.
NOT_COMPILED = {
    "previewSchedule": "computed in Python by lending.schedule; nothing to read",
    "portfolio": "one aggregate statement of its own (db.repositories.portfolio); no rows",
    "decisionStats": "one aggregate statement of its own (db.repositories.decision_stats)",
}
# Fields whose rule stays in Python (rendering it in SQL would copy it): a query selecting one
# runs its root field on the per-field path.
NOT_COMPILED_FIELDS = {
    "Loan.settlementQuote": "lending.settlement's accrual by day count",
    "Installment.calculation": "lending.schedule's period interest, shown as it was computed",
}


def reachable_fields() -> dict[str, set[str]]:
    """Field names by type, for every type the compiled root fields lead to."""
    gql = schema._schema
    query = gql.query_type
    assert query is not None
    seen: dict[str, set[str]] = {}
    pending = [
        get_named_type(field.type)
        for name, field in query.fields.items()
        if name not in NOT_COMPILED
    ]
    pending += [gql.get_type(name) for name in ("Applicant", "LoanApplication", "LoanProduct")]
    pending += [gql.get_type(name) for name in ("Loan", "Decision", "Installment", "Payment")]
    while pending:
        named = pending.pop()
        if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            continue
        if named.name in seen:
            continue
        fields = {
            name: field
            for name, field in named.fields.items()
            if f"{named.name}.{name}" not in NOT_COMPILED_FIELDS
        }
        seen[named.name] = set(fields)
        pending += [get_named_type(field.type) for field in fields.values()]
    return seen


def test_every_reachable_field_declares_what_it_reads():
    gql = schema._schema
    undeclared = []
    for type_name, fields in reachable_fields().items():
        owner = gql.get_type(type_name)
        for name in fields:
            strawberry_field = owner.fields[name].extensions["strawberry-definition"]
            is_part = type_name.endswith(("Connection", "Edge")) or type_name == "PageInfo"
            if READS not in strawberry_field.metadata and not is_part:
                undeclared.append(f"{type_name}.{name}")
    assert undeclared == []


def test_only_the_listed_root_fields_are_not_compiled():
    query = schema._schema.query_type
    assert query is not None
    undeclared = {
        name
        for name, field in query.fields.items()
        if READS not in field.extensions["strawberry-definition"].metadata
    }
    assert undeclared == set(NOT_COMPILED)
