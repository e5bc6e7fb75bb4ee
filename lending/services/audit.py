"""Recording changes: a hash-chained audit event per change, and a loan event where one applies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditEvent
from db.repositories import audit as audit_repo
from db.repositories import events as event_repo
from lending.audit import Caller, StoredEvent, event_hash, first_broken_link

# Audit actions that subscribers to loanEvents hear about, with the event type they see.
PUBLISHED = {
    "application.decided": "DECIDED",
    "application.withdrawn": "WITHDRAWN",
    "loan.disbursed": "DISBURSED",
    "payment.recorded": "PAYMENT_RECORDED",
    "payment.reversed": "PAYMENT_REVERSED",
    "loan.paid_off": "PAID_OFF",
}


def chain_of(application_id: int) -> str:
    """The audit chain of an application (its loan and payments included)."""
    return f"application:{application_id}"


async def record(
    session: AsyncSession,
    caller: Caller,
    *,
    application_id: int,
    action: str,
    entity: object,
    before: dict[str, Any] | None,
    loan_id: int | None = None,
) -> None:
    """Append an audit event for ``entity`` after the change, announce it if subscribers care."""
    chain = chain_of(application_id)
    previous = await audit_repo.last_hash(session, chain)
    entity_type = type(entity).__name__
    entity_key = getattr(entity, "id")  # noqa: B009 - any mapped row
    content: dict[str, Any] = {
        "chain": chain,
        "actor": caller.actor,
        "action": action,
        "entity_type": entity_type,
        "entity_id": f"{entity_type}:{entity_key}",
        "before": before,
        "after": audit_repo.snapshot(entity),
        "request_id": caller.request_id,
        "idempotency_key": caller.idempotency_key,
        "at": datetime.now(UTC).isoformat(),
    }
    await audit_repo.append(
        session,
        AuditEvent(
            **{**content, "at": datetime.fromisoformat(content["at"])},
            previous_hash=previous,
            hash=event_hash(previous, content),
        ),
    )
    if action in PUBLISHED:
        await event_repo.notify(
            session,
            {
                "type": PUBLISHED[action],
                "applicationId": application_id,
                "loanId": loan_id,
                "entityId": content["entity_id"],
                "actor": caller.actor,
                "at": content["at"],
            },
        )


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
