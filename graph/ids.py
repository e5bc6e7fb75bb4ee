"""Opaque global ids: base64 of "TypeName:key", as Relay clients expect."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from db.reads.plan import global_id
from lending.errors import DomainError, ErrorCode


def to_global_id(type_name: str, key: int) -> str:
    """The global id of the ``type_name`` row with primary key ``key``."""
    return global_id(type_name, key)


def parse_global_id(global_id: str) -> tuple[str, int] | None:
    """(type name, key) from a global id, or None when it is not one of ours."""
    text = global_id.strip()
    if not text or len(text) > 200:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, key = raw.partition(":")
    if not sep or not key.isdigit() or not type_name.isidentifier():
        return None
    number = int(key)
    if number <= 0 or number >= 2**63:
        return None
    return type_name, number


def key_for(type_name: str) -> Callable[[str], int | None]:
    """The key behind a global id of ``type_name``; None for any other id (a lookup's null)."""

    def key(id: str) -> int | None:
        parsed = parse_global_id(id)
        return parsed[1] if parsed is not None and parsed[0] == type_name else None

    return key


def key_of(global_id: str, expected_type: str, field: str) -> int:
    """The primary key behind a global id of ``expected_type``, or VALIDATION_FAILED."""
    parsed = parse_global_id(global_id)
    if parsed is None:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, f"{global_id[:60]!r} is not a valid id.", field
        )
    type_name, key = parsed
    if type_name != expected_type:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            f"Expected the id of a {expected_type}, got the id of a {type_name}.",
            field,
        )
    return key
