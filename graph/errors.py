"""Errors as clients see them: userErrors for expected failures, masked faults for the rest."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

import graph.enums  # noqa: F401 - registers the domain enums with GraphQL
from db.errors import OUTAGE, unavailable
from lending.errors import DomainError, DomainErrors, ErrorCode

log = logging.getLogger("lending.errors")


@strawberry.type(description="An expected failure of a mutation; nothing was written.")
class UserError:
    code: ErrorCode = strawberry.field(description="Stable machine-readable code.")
    field: list[str] | None = strawberry.field(
        description='Path to the offending input field, such as ["input", "amount"].'
    )
    message: str = strawberry.field(description="Human-readable explanation.")


def user_errors(exc: DomainError | DomainErrors) -> list[UserError]:
    """The userErrors of a domain failure."""
    errors = exc.errors if isinstance(exc, DomainErrors) else [exc]
    return [
        UserError(
            code=e.code,
            field=["input", *e.field.split(".")] if e.field else None,
            message=e.message,
        )
        for e in errors
    ]


class ClientError(Exception):
    """A top-level error caused by the request (bad argument, bad cursor); shown as is."""

    def __init__(self, message: str, code: str = "BAD_USER_INPUT") -> None:
        super().__init__(message)
        self.code = code


def is_unexpected(error: GraphQLError) -> bool:
    """True for faults the client must not see: anything not raised on purpose."""
    original = error.original_error
    return original is not None and not isinstance(original, ClientError | GraphQLError)


def request_id_of(execution_context: ExecutionContext | None) -> str:
    """The request id carried by the GraphQL context, if any."""
    context: Any = execution_context.context if execution_context else None
    return str(getattr(context, "request_id", None) or "-")


SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


def unavailable_error(reason: str, request_id: str) -> dict[str, Any]:
    """The error of a request the database could not serve: retry it in a moment."""
    return {
        "message": f"Service unavailable: {reason}. Retry in a moment.",
        "extensions": {"code": SERVICE_UNAVAILABLE, "retryable": True, "requestId": request_id},
    }


def log_errors(errors: list[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """Log unexpected faults with their traceback and request id; client errors quietly.

    A database outage is warned about once (db.errors.OUTAGE), not once per request.
    """
    request_id = request_id_of(execution_context)
    for error in errors:
        if is_unexpected(error):
            original = error.original_error
            assert original is not None
            reason = unavailable(original)
            if reason is not None:
                OUTAGE.noticed(reason)
                continue
            log.error(
                "unexpected error [request_id=%s] at %s: %s",
                request_id,
                error.path,
                original,
                exc_info=(type(original), original, original.__traceback__),
            )
        else:
            # The code only: a message may quote the request's values.
            code = (error.extensions or {}).get("code") or _code_of(error)
            log.info("client error [request_id=%s]: %s", request_id, code)


# The refusals of the depth, alias and token limits (graph.limits), by their wording.
_LIMIT_SIGNS = (
    "exceeds maximum operation depth",
    "aliases found. Allowed",
    "Document contains more",
)


def _code_of(error: GraphQLError) -> str:
    """The code of an error the request caused (parse, validation, bad variables)."""
    if any(sign in error.message for sign in _LIMIT_SIGNS):
        return "QUERY_TOO_COMPLEX"
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if error.message.startswith("Variable '$"):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


def mask(error: GraphQLError, request_id: str) -> GraphQLError:
    """The error as the client sees it: always with a code, never with a fault's details."""
    original = error.original_error
    if is_unexpected(error):
        assert original is not None
        reason = unavailable(original)
        if reason is not None:
            found = unavailable_error(reason, request_id)
            return GraphQLError(
                found["message"], nodes=error.nodes, path=error.path, extensions=found["extensions"]
            )
        return GraphQLError(
            f"Internal server error (request id {request_id}).",
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        )
    if isinstance(original, ClientError):
        error.extensions = {**(error.extensions or {}), "code": original.code}
    elif not (error.extensions or {}).get("code"):
        code = _code_of(error) if error.path is None else "INTERNAL_SERVER_ERROR"
        error.extensions = {**(error.extensions or {}), "code": code}
    return error


class MaskUnexpectedErrors(SchemaExtension):
    """Replace unexpected faults with a generic message that carries the request id."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        errors = getattr(result, "errors", None)
        if not errors:
            return
        request_id = request_id_of(self.execution_context)
        result.errors = [mask(error, request_id) for error in errors]  # type: ignore[union-attr]
