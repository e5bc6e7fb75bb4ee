"""Collections: reminders on overdue instalments, requested by agents and reported on by the
service that delivers them (DOMAIN: Reminders)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Reminder
from db.repositories import reminders as repo
from db.repositories import servicing as servicing_repo
from db.repositories.audit import snapshot
from lending import clock
from lending.audit import AuditAction, Caller
from lending.delinquency import InstallmentStatus, installment_status
from lending.errors import DomainError, ErrorCode
from lending.services.audit import Change, record
from lending.services.payments import ledger, locked_loan
from lending.states import (
    MAX_REMINDERS,
    LoanStatus,
    ReminderChannel,
    ReminderStatus,
    check_reminder_report,
)
from lending.validation import clean_text

MAX_MESSAGE_LENGTH = 1000
MAX_DETAIL_LENGTH = 1000

_REPORTED = {
    ReminderStatus.DELIVERED: AuditAction.REMINDER_DELIVERED,
    ReminderStatus.FAILED: AuditAction.REMINDER_FAILED,
}


async def request_reminder(
    session: AsyncSession,
    caller: Caller,
    *,
    installment_id: int,
    channel: ReminderChannel,
    message: str,
    today: date | None = None,
) -> Reminder:
    """Queue a reminder on an instalment OVERDUE today, at most one a day per channel."""
    today = today or clock.today()
    text = clean_text(
        message,
        "message",
        max_length=MAX_MESSAGE_LENGTH,
        required=True,
        label="Message",
        multiline=True,
    )
    loan_id = await servicing_repo.installment_loan_id(session, installment_id)
    if loan_id is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such instalment.", "installmentId")
    loan = await locked_loan(session, loan_id)
    if loan.status is not LoanStatus.ACTIVE:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION,
            f"Reminders are for ACTIVE loans; this one is {loan.status.value}.",
            "installmentId",
        )
    current = await ledger(session, loan)
    number = next(i.number for i in current.installments if i.id == installment_id)
    balance = next(b for b in current.allocation.balances if b.number == number)
    status = installment_status(balance, today)
    if status is not InstallmentStatus.OVERDUE:
        raise DomainError(
            ErrorCode.NOT_OVERDUE,
            f"The instalment is {status.value} today ({today}), not OVERDUE.",
            "installmentId",
        )
    assert text is not None
    if await repo.count_for_installment(session, installment_id) >= MAX_REMINDERS:
        raise DomainError(
            ErrorCode.POLICY_VIOLATION,
            f"This instalment has had {MAX_REMINDERS} reminders: escalate it instead.",
            "installmentId",
        )
    reminder = await repo.add_reminder(
        session,
        Reminder(
            loan_id=loan.id,
            installment_id=installment_id,
            channel=channel,
            message=text,
            requested_by=caller.actor,
            requested_on=today,
        ),
    )
    if reminder is None:
        raise DomainError(
            ErrorCode.REMINDER_TOO_SOON,
            f"A {channel.value} reminder on this instalment was already requested today "
            f"({today}); try another channel, or tomorrow.",
            "channel",
        )
    await record(
        session,
        caller,
        Change(AuditAction.REMINDER_REQUESTED, reminder, loan_id=loan.id),
        application_id=loan.application_id,
    )
    return reminder


async def report_delivery(
    session: AsyncSession,
    caller: Caller,
    *,
    reminder_id: int,
    outcome: ReminderStatus,
    detail: str | None,
) -> Reminder:
    """Record that a QUEUED reminder was delivered, or failed (which needs a detail)."""
    found = await repo.lock_reminder(session, reminder_id)
    if found is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such reminder.", "reminderId")
    reminder, application_id = found
    check_reminder_report(reminder.status, outcome)
    text = clean_text(
        detail,
        "detail",
        max_length=MAX_DETAIL_LENGTH,
        required=outcome is ReminderStatus.FAILED,
        label="Detail of a failure" if outcome is ReminderStatus.FAILED else "Detail",
        multiline=True,
    )
    before = snapshot(reminder)
    reminder = await repo.report(session, reminder, outcome=outcome, detail=text, by=caller.actor)
    await record(
        session,
        caller,
        Change(_REPORTED[outcome], reminder, before, loan_id=reminder.loan_id),
        application_id=application_id,
    )
    return reminder
