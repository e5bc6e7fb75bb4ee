"""The one place where a mutation's transaction is committed or rolled back, and replayed."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db.repositories import idempotency
from graph.context import Info
from graph.errors import UserError, user_errors
from graph.inputs import nul_field
from graph.node import resolve_key
from graph.relay import Node
from lending.audit import Caller, canonical_json
from lending.errors import DomainError, DomainErrors, ErrorCode


@strawberry.input(description="Fields shared by every mutation input.")
class IdempotentInput:
    """Input fields every mutation takes."""

    idempotency_key: str | None = strawberry.field(
        default=None,
        description="1 to 255 characters. A retry with the same key and input replays the first "
        "result (replayed: true) and writes nothing; another input is IDEMPOTENCY_KEY_REUSED.",
    )


@strawberry.input(description="Fields shared by mutations on an existing object.")
class VersionedInput(IdempotentInput):
    """Input fields of mutations on an existing application or loan."""

    expected_version: int | None = strawberry.field(
        default=None,
        description="The version you last read; STALE_VERSION (and nothing written) if it moved.",
    )


@strawberry.type(description="Fields shared by every mutation payload.")
class Replayable:
    """The payload field every mutation returns."""

    replayed: bool = strawberry.field(
        description="True when this is the stored result of an earlier call with the same key."
    )


Work = Callable[[AsyncSession, Caller], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True)
class Outcome:
    """What a mutation produced: (type name, key) per payload field, and whether replayed."""

    keys: Mapping[str, tuple[str, int] | None]
    replayed: bool

    async def view(self, info: Info, name: str) -> Any:
        """The GraphQL object for payload field ``name`` (None when the mutation made none)."""
        ref = self.keys.get(name)
        if ref is None:
            return None
        node: Node | None = await resolve_key(info, ref[0], ref[1])
        return node


def request_hash(operation: str, input_obj: Any) -> str:
    """Fingerprint of a mutation's input, minus its idempotency key."""
    fields = {k: v for k, v in dataclasses.asdict(input_obj).items() if k != "idempotency_key"}
    return hashlib.sha256(canonical_json([operation, fields]).encode()).hexdigest()


def _checked_key(input_obj: object) -> str | None:
    """The input's idempotency key, after the checks every input gets."""
    field = nul_field(input_obj)
    if field is not None:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, "Text must not contain the NUL character.", field
        )
    key: str | None = getattr(input_obj, "idempotency_key", None)
    if key is not None and not 1 <= len(key) <= 255:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            "An idempotency key has 1 to 255 characters.",
            "idempotencyKey",
        )
    return key


async def run_mutation(
    info: Info, operation: str, input_obj: object, work: Work
) -> Outcome | list[UserError]:
    """Run ``work`` in its own transaction: commit on success, roll back on a domain error.

    With an idempotency key, the first completed execution's result is stored in the same
    transaction; a retry with the same input replays it, a different input is refused.
    Expected failures come back as userErrors, having written nothing; anything else
    propagates (after the rollback) and is masked for the client.
    """
    context = info.context
    try:
        key = _checked_key(input_obj)
        caller = Caller(actor=context.actor, request_id=context.request_id, idempotency_key=key)
        fingerprint = request_hash(operation, input_obj)
        async with context.sessionmaker() as session, session.begin():
            if key is not None:
                existing = await idempotency.claim(
                    session,
                    actor=caller.actor,
                    key=key,
                    operation=operation,
                    request_hash=fingerprint,
                )
                if existing is not None:
                    if existing.request_hash != fingerprint:
                        raise DomainError(
                            ErrorCode.IDEMPOTENCY_KEY_REUSED,
                            f"This key was first used for another {existing.operation} input.",
                            "idempotencyKey",
                        )
                    stored = existing.result or {}
                    return Outcome(
                        {k: (v[0], v[1]) if v else None for k, v in stored.items()},
                        replayed=True,
                    )
            rows = await work(session, caller)
            keys = {
                name: (type(row).__name__, row.id) if row is not None else None
                for name, row in rows.items()
            }
            if key is not None:
                await idempotency.store_result(
                    session, actor=caller.actor, key=key, result={k: v for k, v in keys.items()}
                )
    except (DomainError, DomainErrors) as exc:
        return user_errors(exc)
    context.loaders.prime(rows.values())
    return Outcome(keys, replayed=False)
