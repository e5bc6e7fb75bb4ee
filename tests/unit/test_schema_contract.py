"""The committed schema.graphql matches the code, and everything in it is described."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
)

from graph.schema import schema
from graph.server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BUILT_IN_SCALARS = {"String", "Int", "Float", "Boolean", "ID"}


def test_schema_file_is_up_to_date():
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == schema.as_str() + "\n", "schema.graphql drifted: run `make schema`"


def undescribed() -> list[str]:
    missing: list[str] = []
    for name, type_ in schema._schema.type_map.items():
        if name.startswith("__") or name in BUILT_IN_SCALARS:
            continue
        if not type_.description:
            missing.append(name)
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in type_.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                for arg_name, arg in field.args.items():
                    if not arg.description:
                        missing.append(f"{name}.{field_name}({arg_name})")
        elif isinstance(type_, GraphQLInputObjectType):
            for field_name, field in type_.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
        elif isinstance(type_, GraphQLEnumType):
            for value_name, value in type_.values.items():
                if not value.description:
                    missing.append(f"{name}.{value_name}")
        elif isinstance(type_, GraphQLScalarType) and not type_.description:
            missing.append(name)
    return missing


def test_every_type_field_argument_and_enum_value_is_described():
    assert undescribed() == []


def test_every_guarded_root_field_names_the_roles_it_is_open_to():
    for root in (schema._schema.query_type, schema._schema.mutation_type):
        assert root is not None
        for name, field in root.fields.items():
            assert field.description is not None
            assert "Roles: " in field.description, f"{root.name}.{name}"


def test_every_setting_is_described():
    undescribed_settings = [
        name for name, field in Settings.model_fields.items() if not field.description
    ]
    assert undescribed_settings == []
