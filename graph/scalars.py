"""The Decimal scalar: exact amounts as strings on the wire, validated by the domain, not here.
And the DateTime scalar, refusing instants PostgreSQL could be sent but Python cannot convert."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import dateutil.parser
import strawberry
from graphql import FloatValueNode, IntValueNode, StringValueNode, ValueNode
from strawberry.exceptions import StrawberryInputCoercionError

from lending.money import decimal_of


class RawDecimal(str):
    """Client text that is not a decimal number; the domain rejects it with a userError."""


def _parse_value(value: Any) -> Any:
    # Bad amounts must become typed userErrors, not query errors, so parsing never fails here:
    # whatever is not an exact number passes through for lending.money to reject.
    if isinstance(value, bool):
        return RawDecimal(str(value))
    if isinstance(value, int | float):
        return value
    text = str(value)
    found = decimal_of(text)
    return RawDecimal(text) if found is None else found


def _parse_literal(node: ValueNode, _variables: Any = None) -> Any:
    if isinstance(node, StringValueNode | IntValueNode | FloatValueNode):
        # Literal digits in the query text are exact, so a float literal is read as a Decimal.
        return _parse_value(node.value)
    return RawDecimal("")


DecimalScalar = strawberry.scalar(
    name="Decimal",
    description=(
        'An exact decimal number, sent and returned as a JSON string such as "25000.00": ASCII '
        "digits with an optional minus sign, decimal point and exponent, without spaces, "
        'underscores or a signed zero ("-0"); floats are refused. Amounts are sent with at '
        "most as many decimals as their currency has, and returned with exactly as many "
        '("78028" yen, "12.50" dollars).'
    ),
    serialize=str,
    parse_value=_parse_value,
    parse_literal=_parse_literal,
)


def _instant(value: Any) -> datetime:
    """An ISO 8601 date and time, as Strawberry's DateTime reads it, that is also an instant
    in years 1 to 9999 once in UTC ("9999-12-31T23:59:59-14:00" is not: comparing it with a
    column would fail as a server error); a coercion error otherwise."""
    if not isinstance(value, str):
        raise StrawberryInputCoercionError(
            f'Value cannot represent a DateTime: "{value}". Expected a string.'
        )
    try:
        parsed: datetime = dateutil.parser.isoparse(value)
        if parsed.tzinfo is not None:
            parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise StrawberryInputCoercionError(
            f'Value cannot represent a DateTime: "{value}". Expected an ISO 8601 date and time '
            "within years 1 to 9999 in UTC."
        ) from None
    return parsed


DateTimeScalar = strawberry.scalar(
    name="DateTime",
    description="Date with time (isoformat)",
    serialize=datetime.isoformat,
    parse_value=_instant,
)

SCALAR_OVERRIDES: dict[object, Any] = {Decimal: DecimalScalar, datetime: DateTimeScalar}
