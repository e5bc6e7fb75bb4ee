"""The one place where a mutation's transaction is committed or rolled back, and replayed.

A mutation resolver hands ``run_mutation`` its payload type and a ``work`` function that calls
one service and returns the success payload, its objects made with ``written`` from the rows
the service wrote. Failures become the same payload type with userErrors; a replay becomes
it with the stored objects read back through their own types.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Self, TypeVar, overload

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from db.records import Record
from db.repositories import idempotency
from db.repositories.idempotency import StoredResult
from graph.context import Info
from graph.errors import UserError, user_errors
from graph.inputs import PROBLEM, unstorable_field
from graph.loaders import Loaders
from graph.observability import telemetry
from graph.relay import Node, RowView
from lending.audit import Caller, canonical_json
from lending.errors import DomainError, DomainErrors, ErrorCode
from lending.services import audit

V = TypeVar("V", bound=RowView)


@strawberry.input(description="Fields shared by every mutation input.")
class IdempotentInput:
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="1 to 255 characters. A retry with the same key and input replays the first "
        "result (replayed: true) and writes nothing; another input is IDEMPOTENCY_KEY_REUSED.",
    )
    dry_run: bool = strawberry.field(
        default=False,
        description="Check and compute everything, then keep nothing: the payload is what the "
        "call would return, with the same userErrors, but no row, audit event, loan event or "
        "idempotency record is kept, and the objects it returns do not exist afterwards (their "
        "ids resolve to null). A key already used replays as it would (replayed: true).",
    )


@strawberry.input(description="Fields shared by mutations on an existing object.")
class VersionedInput(IdempotentInput):
    expected_version: int | None = strawberry.field(
        default=None,
        description="The version you last read; STALE_VERSION (and nothing written) if it moved.",
    )


@overload
def written(view: type[V], row: Record) -> V: ...
@overload
def written(view: type[V], row: Record | None) -> V | None: ...
def written(view: type[V], row: Record | None) -> V | None:
    """The object of a row the mutation wrote; once committed, the row seeds the loaders."""
    if row is None:
        return None
    made = view.from_row(row)
    made.__dict__["_written"] = row
    return made


@strawberry.type(description="Fields shared by every mutation payload.")
class Payload:
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why nothing was written; empty on success."
    )
    replayed: bool = strawberry.field(
        default=False,
        description="True when this is the stored result of an earlier call with the same key.",
    )
    dry_run: bool = strawberry.field(
        default=False,
        description="True when nothing was kept: the input asked for a dry run, and the objects "
        "above do not exist (their ids resolve to null).",
    )

    def objects(self) -> Iterator[tuple[str, Node]]:
        """(field name, object) of each object the payload holds."""
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, Node):
                yield item.name, value

    def references(self) -> dict[str, list[Any] | None]:
        """What an idempotency record keeps: (type name, key) of each object field."""
        found = {name: [_type_name(view), view.key] for name, view in self.objects()}  # type: ignore[attr-defined]
        return {item.name: found.get(item.name) for item in _object_fields(type(self))}

    def prime(self, loaders: Loaders) -> None:
        """Seed the request's loaders with the rows written, so the payload reads none back."""
        loaders.prime(row for _, view in self.objects() if (row := view.__dict__.get("_written")))

    @classmethod
    async def replay(cls, loaders: Loaders, stored: dict[str, Any], dry_run: bool) -> Self:
        """The payload of an earlier execution, its objects as they are now."""
        views: dict[str, Node | None] = {}
        for name, reference in stored.items():
            view = RowView.named(reference[0]) if reference else None
            views[name] = await view.load(loaders, reference[1]) if view and reference else None
        return cls(replayed=True, dry_run=dry_run, **views)  # type: ignore[arg-type]


def _type_name(view: Node) -> str:
    name: str = view.__strawberry_definition__.name  # type: ignore[attr-defined]
    return name


def _object_fields(payload: type[Payload]) -> list[dataclasses.Field[Any]]:
    base = {item.name for item in dataclasses.fields(Payload)}
    return [item for item in dataclasses.fields(payload) if item.name not in base]


_NOT_THE_INPUT = frozenset({"idempotency_key", "dry_run"})


def request_hash(operation: str, input_obj: Any) -> str:
    """Fingerprint of a mutation's input, minus its idempotency key and dry-run flag."""
    fields = {k: v for k, v in dataclasses.asdict(input_obj).items() if k not in _NOT_THE_INPUT}
    return hashlib.sha256(canonical_json([operation, fields]).encode()).hexdigest()


def _checked_key(input_obj: object) -> str | None:
    """The input's idempotency key, after the checks every input gets."""
    field = unstorable_field(input_obj)
    if field is not None:
        raise DomainError(ErrorCode.VALIDATION_FAILED, f"Text {PROBLEM}.", field)
    key: str | None = getattr(input_obj, "idempotency_key", None)
    if key is not None and not 1 <= len(key) <= 255:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            "An idempotency key has 1 to 255 characters.",
            "idempotencyKey",
        )
    return key


async def _claim(
    session: AsyncSession,
    caller: Caller,
    key: str | None,
    operation: str,
    fingerprint: str,
    dry_run: bool,
) -> dict[str, Any] | None:
    """Claim the idempotency key: None when this call runs, else what the first one stored.

    A dry run only looks: it claims nothing, and replays what a real call would replay.
    """
    if key is None:
        return None
    if dry_run:
        existing = await idempotency.find(session, actor=caller.actor, key=key)
    else:
        existing = await idempotency.claim(
            session, actor=caller.actor, key=key, operation=operation, request_hash=fingerprint
        )
    if existing is None:
        return None
    if existing.request_hash != fingerprint:
        raise DomainError(
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            f"This key was first used for another {existing.operation} input.",
            "idempotencyKey",
        )
    return existing.result or {}


P = TypeVar("P", bound=Payload)
Work = Callable[[AsyncSession, Caller], Awaitable[P]]


async def run_mutation(info: Info, payload: type[P], input_obj: object, work: Work[P]) -> P:
    """Run ``work`` in its own transaction: commit on success, roll back on a domain error.

    With an idempotency key, the first completed execution's objects are stored in the same
    transaction; a retry with the same input replays them, a different input is refused.
    Expected failures come back as userErrors, having written nothing; anything else
    propagates (after the rollback) and is masked for the client. A dry run's transaction is
    held open while its payload is read (through it), then rolled back: before the next
    mutation of the request runs, or at the request's end.
    """
    context, operation = info.context, info.field_name
    await context.end_dry_run()
    dry = bool(getattr(input_obj, "dry_run", False))
    try:
        key = _checked_key(input_obj)
        owner = context.principal.owner if context.principal else None
        caller = Caller(context.actor, context.request_id, key, owner)
        fingerprint = request_hash(operation, input_obj)
        session = context.sessionmaker()
        held = False
        try:
            transaction = await session.begin()
            stored = await _claim(session, caller, key, operation, fingerprint, dry)
            if stored is None:
                audit.defer_append(session)
                made = await work(session, caller)
                # its audit events, and what a retry replays (a dry run keeps nothing)
                kept = (
                    None
                    if dry or key is None
                    else StoredResult(caller.actor, key, made.references())
                )
                await audit.finish(session, kept)
                if dry:
                    made.dry_run = held = True
                    await context.hold_dry_run(session)
            if not held:
                await (transaction.rollback() if dry else transaction.commit())
        finally:
            if not held:
                await session.close()  # rolls back whatever is still open
    except (DomainError, DomainErrors) as exc:
        errors = user_errors(exc)
        telemetry.note_user_errors([error.code.value for error in errors])
        return payload(user_errors=errors, dry_run=dry)
    if stored is not None:
        telemetry.note_replay()
        return await payload.replay(context.loaders, stored, dry)
    made.prime(context.loaders)
    return made
