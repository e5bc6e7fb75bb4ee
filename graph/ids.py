"""Opaque global ids: base64 of "TypeName:key", as Relay clients expect.

An id has one spelling: exactly what ``to_global_id`` writes (URL-safe base64 without padding
of an ASCII type name, a colon and the key in ASCII digits without leading zeros, 1 to
2**63 - 1). Any other text, even one that decodes to a known object, is not an id.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from db.reads.plan import global_id
from graph.errors import ClientError
from lending.errors import DomainError, ErrorCode

MAX_ID_LENGTH = 200
MAX_KEY = 2**63 - 1  # bigint, the type of every primary key
_ID = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):([1-9][0-9]*)")


def to_global_id(type_name: str, key: int) -> str:
    """The global id of the ``type_name`` row with primary key ``key``."""
    return global_id(type_name, key)


def decode_opaque(text: str, limit: int) -> bytes | None:
    """The bytes behind an id or cursor written as the service writes them (URL-safe base64,
    unpadded, at most ``limit`` characters); None for any other spelling."""
    if not text or len(text) > limit:
        return None
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):  # ValueError: not ASCII
        return None
    return raw if base64.urlsafe_b64encode(raw).rstrip(b"=") == text.encode() else None


def parse_global_id(global_id: str) -> tuple[str, int] | None:
    """(type name, key) from a global id, or None when it is not one of ours."""
    raw = decode_opaque(global_id, MAX_ID_LENGTH)
    match = _ID.fullmatch(raw.decode("ascii", "replace")) if raw is not None else None
    if match is None or int(match[2]) > MAX_KEY:
        return None
    return match[1], int(match[2])


def read_id(global_id: str, argument: str) -> tuple[str, int]:
    """(type name, key) of an id given to a read's ``argument``; BAD_USER_INPUT if not an id."""
    parsed = parse_global_id(global_id)
    if parsed is None:
        raise ClientError(f"`{argument}` is not a valid id.")
    return parsed


def key_for(type_name: str) -> Callable[[str], int | None]:
    """The key behind a global id of ``type_name``; None for the id of another type (a
    lookup's null), BAD_USER_INPUT for text that is not an id."""

    def key(id: str) -> int | None:
        parsed = read_id(id, "id")
        return parsed[1] if parsed[0] == type_name else None

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
