"""What a GraphQL request's JSON must be before anything parses it for real.

Python's own JSON parser (Strawberry's) fails with an exception on some bodies any client can
send: invalid UTF-8 (UnicodeDecodeError), nesting thousands deep (RecursionError), an integer
of thousands of digits (ValueError). Each was an HTTP 500 with a traceback in the log. Here such
a body is found first and answered 400 BAD_REQUEST with the reason, as JSON.

The check costs one orjson parse on the usual body (valid, shallow, 64-bit numbers); Python's
parser, with bounds, runs only when orjson refuses, because some bodies orjson refuses are
still acceptable requests (a lone ``\\ud800`` escape is bad *text*, which the GraphQL layer
refuses field by field: graph.inputs).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import orjson


class BadRequest(Exception):
    """The body cannot be a GraphQL request; the message says why."""


# No input accepts a number beyond a double's range, and orjson refuses one: so does the
# fallback (which would otherwise take seconds over, or refuse, thousands of digits).
MAX_DIGITS = 308
TOO_LONG = f"A number in the request has more than {MAX_DIGITS} digits."


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise BadRequest(TOO_LONG)
    return int(text)


def _depth_within(value: Any, max_depth: int) -> bool:
    """Whether ``value`` nests objects and arrays at most ``max_depth`` deep."""
    level: list[Any] = [value]
    for _ in range(max_depth + 1):
        deeper: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                deeper.extend(item.values())
            elif isinstance(item, list):
                deeper.extend(item)
        if not deeper:
            return True
        level = deeper
    return False


def parse_json(raw: bytes, max_depth: int, what: str) -> Any:
    """``raw`` as JSON, or BadRequest: not UTF-8, not JSON, nested deeper than ``max_depth``,
    or holding a number beyond a double's range."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as refused:
        if "infinity" in str(refused):
            raise BadRequest(TOO_LONG) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"The {what} is not valid UTF-8.") from None
        try:
            value = json.loads(text, parse_int=_bounded_int)
        except RecursionError:
            raise BadRequest(f"The {what} is nested more than {max_depth} levels deep.") from None
        except ValueError as error:  # JSONDecodeError included
            raise BadRequest(f"The {what} is not valid JSON ({str(error)[:120]}).") from None
    if not _depth_within(value, max_depth):
        raise BadRequest(f"The {what} is nested more than {max_depth} levels deep.")
    return value


def check_post(body: bytes, max_depth: int) -> None:
    """BadRequest unless ``body`` is one JSON object (batching is not enabled)."""
    if not body.strip():
        raise BadRequest("The request body is empty; send a JSON object with a `query`.")
    value = parse_json(body, max_depth, "request body")
    if isinstance(value, list):
        raise BadRequest("Batching is not enabled: send one JSON object per request.")
    if not isinstance(value, dict):
        raise BadRequest("The request body must be a JSON object with a `query`.")


def check_get(query_string: bytes, max_depth: int) -> None:
    """BadRequest unless the JSON parameters of a GET (``variables``, ``extensions``) are
    objects that parse."""
    try:
        params = parse_qs(query_string.decode("latin-1"), encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("The query string is not valid UTF-8.") from None
    for name in ("variables", "extensions"):
        for raw in params.get(name, ()):
            value = parse_json(raw.encode("utf-8", "surrogatepass"), max_depth, name)
            if value is not None and not isinstance(value, dict):
                raise BadRequest(f"`{name}` must be a JSON object.")
