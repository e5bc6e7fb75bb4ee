"""The personal-data policy: the role × field matrix read from the policy table itself, the masks,
audit snapshots, and the schema's fields that declare personal data."""

from __future__ import annotations

from graphql import GraphQLObjectType, is_non_null_type

from graph.compiled.reads import READS, Personal
from graph.schema import schema
from lending.access import Role
from lending.privacy import (
    FILTERS,
    POLICY,
    SNAPSHOT_FIELDS,
    Access,
    Data,
    access,
    describe,
    mask_email,
    mask_phone,
    others_request,
    refused_filter,
    shown,
    snapshot,
)


def personal_fields() -> dict[str, Personal]:
    """Every schema field declared as personal data, by ``Type.field``."""
    found = {}
    for named in schema._schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named.name.startswith("__"):
            continue
        for name, field in named.fields.items():
            definition = (field.extensions or {}).get("strawberry-definition")
            declared = getattr(definition, "metadata", {}).get(READS)
            if isinstance(declared, Personal):
                found[f"{named.name}.{name}"] = declared
    return found


def test_the_policy_covers_every_role_for_every_kind_of_data():
    for data in Data:
        assert set(POLICY[data]) == set(Role), data


def test_the_fields_named_in_the_issue_are_declared_personal_with_their_kind():
    kinds = {name: declared.data for name, declared in personal_fields().items()}
    assert kinds == {
        "Applicant.email": Data.CONTACT,
        "Applicant.phone": Data.CONTACT,
        "LoanApplication.declaredMonthlyIncome": Data.FINANCIAL,
        "Assessment.factors": Data.FINANCIAL,
        "Assessment.evidence": Data.FINANCIAL,
        "Decision.assessment": Data.ASSESSMENT,
        "AuditEvent.before": Data.SNAPSHOT,
        "AuditEvent.after": Data.SNAPSHOT,
        "AuditEvent.requestId": Data.OTHERS_REQUESTS,
        "AuditEvent.idempotencyKey": Data.OTHERS_REQUESTS,
    }


def test_each_personal_field_says_who_sees_what_and_can_be_null_where_a_role_sees_nothing():
    for name, declared in personal_fields().items():
        type_name, field_name = name.split(".")
        field = schema._schema.get_type(type_name).fields[field_name]  # type: ignore[union-attr]
        assert describe(declared.data) in (field.description or ""), name
        hidden = any(seen is Access.HIDDEN for seen in POLICY[declared.data].values())
        assert not (hidden and is_non_null_type(field.type)), f"{name} must be nullable"
        masked = any(seen is Access.MASKED for seen in POLICY[declared.data].values())
        if masked and declared.data is not Data.SNAPSHOT:
            assert declared.mask is not None, f"{name} is masked for a role but has no mask"


def test_what_each_role_sees_of_each_value_follows_the_table():
    values = {Data.CONTACT: "ada@example.com", Data.FINANCIAL: "4200.00"}
    for data, value in values.items():
        for role in Role:
            seen = shown(role, data, value, None if data is Data.FINANCIAL else MASK_EMAIL)
            expected = {
                Access.FULL: value,
                Access.MASKED: "a•••@example.com",
                Access.HIDDEN: None,
            }[access(role, data)]
            assert seen == expected, (data, role)


MASK_EMAIL = personal_fields()["Applicant.email"].mask


def test_masks_keep_the_shape():
    assert mask_email("ada@example.com") == "a•••@example.com"
    assert mask_email("x@y.io") == "x•••@y.io"
    assert mask_email("no-at-sign") == "n•••"
    assert mask_email("") == "•••"
    assert mask_phone("+44 20 7946 0958") == "+•• •• •••• ••58"
    assert mask_phone("12") == "12"
    assert mask_phone("7") == "7"


def test_snapshots_are_filtered_by_the_rows_of_their_values():
    state = {
        "id": 7,
        "email": "ada@example.com",
        "phone": "+44 20 7946 0958",
        "declared_monthly_income": "4200.00",
        "evidence": ["doc-1"],
        "factors": [{"name": "dti"}],
        "status": "SUBMITTED",
    }
    for role in Role:
        seen = snapshot(role, state)
        rule = access(role, Data.SNAPSHOT)
        if rule is Access.HIDDEN:
            assert seen is None
            continue
        if rule is Access.FULL:
            assert seen == state
            continue
        assert seen["id"] == 7
        assert seen["status"] == "SUBMITTED"
        for name, (data, mask) in SNAPSHOT_FIELDS.items():
            kept = access(role, data)
            if kept is Access.FULL:
                assert seen[name] == state[name], (role, name)
            elif kept is Access.MASKED:
                assert seen[name] == shown(role, data, state[name], mask), (role, name)
            else:
                assert name not in seen, (role, name)
    assert snapshot(Role.AGENT, None) is None


def test_own_requests_are_always_readable_and_others_per_the_table():
    for role in Role:
        assert others_request(role, "me", "me", "req-1") == "req-1"
        full = access(role, Data.OTHERS_REQUESTS) is Access.FULL
        assert others_request(role, "someone", "me", "req-1") == ("req-1" if full else None)


def test_filters_on_data_a_role_cannot_read_in_full_are_refused():
    class Conditions:
        email = "ada@example.com"
        score_min = None

    for role in Role:
        refused = refused_filter(role, Conditions())
        assert (refused == "email") == (access(role, FILTERS["email"]) is not Access.FULL), role
