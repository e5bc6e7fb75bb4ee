"""Recording changes: a hash-chained audit event per change, and a loan event where one applies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from db.models import AuditEvent
from db.repositories import audit as audit_repo
from db.repositories import idempotency
from db.repositories.idempotency import StoredResult
from lending.audit import (
    AuditAction,
    Caller,
    StoredEvent,
    chain_of,
    event_hash,
    first_broken_link,
    json_safe,
)


@dataclass(frozen=True)
class Change:
    """One change to record: what was done to which row, and the row's state before.

    The state after is the row's columns, with ``also`` added (what the row's children hold,
    such as a decision's assessment factors).
    """

    action: AuditAction
    entity: object
    before: dict[str, Any] | None = None
    loan_id: int | None = None
    also: dict[str, Any] | None = None


async def record(
    session: AsyncSession,
    caller: Caller,
    *changes: Change,
    application_id: int,
    new_chain: bool = False,
) -> None:
    """Append an audit event per change to the application's chain, announce those published.

    The chain is locked and its last hash read (unless ``new_chain``: an application created in
    this transaction has no events yet, and nobody else can see it), then every event and
    announcement is written by one statement: at once, or by ``finish`` when the session was
    given to ``defer_append``.
    """
    await finish(session)  # an earlier change's kept events first: this one links to them
    chain = chain_of(application_id)
    previous = None if new_chain else await audit_repo.lock_chain(session, chain)
    events: list[dict[str, Any]] = []
    announcements: list[dict[str, Any]] = []
    for change in changes:
        entity_type = type(change.entity).__name__
        entity_key = getattr(change.entity, "id")  # noqa: B009 - any mapped row
        content: dict[str, Any] = {
            "chain": chain,
            "actor": caller.actor,
            "action": change.action.value,
            "entity_type": entity_type,
            "entity_id": f"{entity_type}:{entity_key}",
            "before": change.before,
            "after": audit_repo.snapshot(change.entity) | json_safe(change.also or {}),
            "request_id": caller.request_id,
            "idempotency_key": caller.idempotency_key,
            "at": datetime.now(UTC).isoformat(),
        }
        digest = event_hash(previous, content)
        events.append(
            {
                **content,
                "at": datetime.fromisoformat(content["at"]),
                "previous_hash": previous,
                "hash": digest,
            }
        )
        previous = digest
        if change.action.event is not None:
            announcements.append(
                {
                    "type": change.action.event.value,
                    "applicationId": application_id,
                    "loanId": change.loan_id,
                    "entityId": content["entity_id"],
                    "actor": caller.actor,
                    "at": content["at"],
                }
            )
    if session.info.get(_DEFERRED):
        session.info[_PENDING] = (events, announcements)
    else:
        await audit_repo.append(session, events, announcements)


# Keys of a session's ``info``: whether ``record`` keeps its append, and the append it keeps.
_DEFERRED = "audit.deferred"
_PENDING = "audit.pending"


def defer_append(session: AsyncSession) -> None:
    """Have ``record`` keep its last append for ``finish``, which writes it with the
    mutation's stored result: one statement fewer per mutation. ``finish`` must run before
    the transaction commits: a commit with an append kept is refused."""
    session.info[_DEFERRED] = True


async def finish(session: AsyncSession, stored: StoredResult | None = None) -> None:
    """Write the append ``record`` kept, if any, and ``stored`` with it (one statement)."""
    pending: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None
    pending = session.info.pop(_PENDING, None)
    if pending is not None:
        events, announcements = pending
        await audit_repo.append(session, events, announcements, stored)
    elif stored is not None:
        await idempotency.store_result(session, stored)


@event.listens_for(Session, "before_commit")
def _nothing_kept(session: Session) -> None:
    """A change never committed without its audit events (a savepoint's release, which SQLAlchemy
    also calls a commit, commits nothing yet)."""
    if session.info.get(_PENDING) is not None and not session.in_nested_transaction():
        raise RuntimeError("an audit append was kept (defer_append) and never written (finish)")


@dataclass(frozen=True)
class Verification:
    """The result of re-computing every chain."""

    events: int
    chains: int
    broken: StoredEvent | None


def stored(row: AuditEvent) -> StoredEvent:
    """An audit row as the chain rules see it."""
    return StoredEvent(
        id=row.id,
        chain=row.chain,
        content={
            "chain": row.chain,
            "actor": row.actor,
            "action": row.action,
            "entity_type": row.entity_type,
            "entity_id": row.entity_id,
            "before": row.before,
            "after": row.after,
            "request_id": row.request_id,
            "idempotency_key": row.idempotency_key,
            "at": row.at.astimezone(UTC).isoformat(),
        },
        previous_hash=row.previous_hash,
        hash=row.hash,
    )


async def verify(session: AsyncSession) -> Verification:
    """Re-compute every chain's hashes and name the first broken link, if any."""
    events: list[StoredEvent] = []
    async for row in audit_repo.all_events(session):
        events.append(stored(row))
    return Verification(
        events=len(events),
        chains=len({e.chain for e in events}),
        broken=first_broken_link(events),
    )
