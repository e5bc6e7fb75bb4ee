"""Checks that apply to every input object, whatever its type."""

from __future__ import annotations

import dataclasses
from typing import Any

from strawberry.utils.str_converters import to_camel_case

from graph.errors import ClientError


def nul_field(value: Any, path: str = "") -> str | None:
    """The GraphQL path of the first string in ``value`` holding NUL (U+0000), if any.

    PostgreSQL text cannot store NUL, so such a string is bad input wherever it appears.
    """
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, list | tuple):
        return next((p for v in value if (p := nul_field(v, path)) is not None), None)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            name = to_camel_case(item.name)
            found = nul_field(getattr(value, item.name), f"{path}.{name}" if path else name)
            if found is not None:
                return found
    return None


def refuse_nul(filter_input: Any) -> None:
    """Refuse a query filter holding NUL: no row can match it, and PostgreSQL would fail."""
    field = nul_field(filter_input, "filter")
    if field is not None:
        raise ClientError(f"`{field}` must not contain the NUL character.")
