"""The audit trail's rules: canonical JSON, the hash chain, and its verification."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# Every event of an application, its decisions, loan and payments is on the application's chain.
CHAIN_PREFIX = "application:"


def chain_of(application_id: int) -> str:
    """The audit chain of an application (its loan and payments included)."""
    return f"{CHAIN_PREFIX}{application_id}"


class LoanEventType(enum.Enum):
    """What subscribers to loan events hear about."""

    SUBMITTED = "SUBMITTED"
    DECIDED = "DECIDED"
    WITHDRAWN = "WITHDRAWN"
    DISBURSED = "DISBURSED"
    PAYMENT_RECORDED = "PAYMENT_RECORDED"
    PAYMENT_REVERSED = "PAYMENT_REVERSED"
    PAID_OFF = "PAID_OFF"
    REOPENED = "REOPENED"
    SETTLED = "SETTLED"
    CANCELLED = "CANCELLED"
    WRITTEN_OFF = "WRITTEN_OFF"
    REMINDER_REQUESTED = "REMINDER_REQUESTED"
    REMINDER_DELIVERED = "REMINDER_DELIVERED"
    REMINDER_FAILED = "REMINDER_FAILED"


class AuditAction(enum.Enum):
    """What an audit event records (its stored value, such as "application.decided")."""

    APPLICATION_SUBMITTED = "application.submitted"
    DECISION_RECORDED = "decision.recorded"
    LOAN_CREATED = "loan.created"
    APPLICATION_DECIDED = "application.decided"
    APPLICATION_WITHDRAWN = "application.withdrawn"
    LOAN_DISBURSED = "loan.disbursed"
    PAYMENT_RECORDED = "payment.recorded"
    LOAN_PAID_OFF = "loan.paid_off"
    PAYMENT_REVERSED = "payment.reversed"
    LOAN_REOPENED = "loan.reopened"
    LOAN_SETTLED = "loan.settled"
    LOAN_CANCELLED = "loan.cancelled"
    LOAN_WRITTEN_OFF = "loan.written_off"
    REMINDER_REQUESTED = "reminder.requested"
    REMINDER_DELIVERED = "reminder.delivered"
    REMINDER_FAILED = "reminder.failed"

    @property
    def event(self) -> LoanEventType | None:
        """The loan event announced for this action, if subscribers hear about it."""
        return _ANNOUNCED.get(self)


_ANNOUNCED = {
    AuditAction.APPLICATION_SUBMITTED: LoanEventType.SUBMITTED,
    AuditAction.APPLICATION_DECIDED: LoanEventType.DECIDED,
    AuditAction.APPLICATION_WITHDRAWN: LoanEventType.WITHDRAWN,
    AuditAction.LOAN_DISBURSED: LoanEventType.DISBURSED,
    AuditAction.PAYMENT_RECORDED: LoanEventType.PAYMENT_RECORDED,
    AuditAction.PAYMENT_REVERSED: LoanEventType.PAYMENT_REVERSED,
    AuditAction.LOAN_PAID_OFF: LoanEventType.PAID_OFF,
    AuditAction.LOAN_REOPENED: LoanEventType.REOPENED,
    AuditAction.LOAN_SETTLED: LoanEventType.SETTLED,
    AuditAction.LOAN_CANCELLED: LoanEventType.CANCELLED,
    AuditAction.LOAN_WRITTEN_OFF: LoanEventType.WRITTEN_OFF,
    AuditAction.REMINDER_REQUESTED: LoanEventType.REMINDER_REQUESTED,
    AuditAction.REMINDER_DELIVERED: LoanEventType.REMINDER_DELIVERED,
    AuditAction.REMINDER_FAILED: LoanEventType.REMINDER_FAILED,
}


@dataclass(frozen=True)
class Caller:
    """Who asks, under which request and idempotency key: recorded with every change."""

    actor: str
    request_id: str | None = None
    idempotency_key: str | None = None
    # A borrower's email (lower case): they act on their own applicant's rows only.
    owner: str | None = None


def json_safe(value: Any) -> Any:
    """A JSON-ready copy: Decimals and dates as strings (never floats), enums as values."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8."""
    return json.dumps(json_safe(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(previous_hash: str | None, event: Mapping[str, Any]) -> str:
    """sha256(previous hash ‖ canonical JSON of the event), as hex."""
    return hashlib.sha256(((previous_hash or "") + canonical_json(event)).encode()).hexdigest()


@dataclass(frozen=True)
class StoredEvent:
    """An audit row as read back: its hashed content and the two hashes stored beside it."""

    id: int
    chain: str
    content: Mapping[str, Any]
    previous_hash: str | None
    hash: str


def first_broken_link(events: Iterable[StoredEvent]) -> StoredEvent | None:
    """The first event whose hashes do not follow from the chain before it, if any.

    ``events`` are in id order; each chain is checked on its own.
    """
    last: dict[str, str] = {}
    for event in events:
        expected_previous = last.get(event.chain)
        if event.previous_hash != expected_previous:
            return event
        if event_hash(event.previous_hash, event.content) != event.hash:
            return event
        last[event.chain] = event.hash
    return None
