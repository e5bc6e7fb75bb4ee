"""Reminders: requested once per instalment, channel and day; reported on once."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Loan, Reminder
from db.repositories import index_named, insert_unless_taken
from lending.states import ReminderStatus

ONE_A_DAY = index_named(Reminder.__table__, "uq_reminders_installment_id_channel_requested_on")


async def add_reminder(session: AsyncSession, reminder: Reminder) -> Reminder | None:
    """Insert a reminder; None when one was requested on that instalment and channel that day.

    The unique index decides, also between concurrent requests.
    """
    return await insert_unless_taken(session, reminder, ONE_A_DAY)


async def count_for_installment(session: AsyncSession, installment_id: int) -> int:
    """How many reminders an instalment has had."""
    stmt = select(func.count()).where(Reminder.installment_id == installment_id)
    return int(await session.scalar(stmt) or 0)


async def lock_reminder(session: AsyncSession, reminder_id: int) -> tuple[Reminder, int] | None:
    """A reminder, locked until the transaction ends (reports on it take turns), and the id of
    its loan's application (whose audit chain it is on)."""
    stmt = (
        select(Reminder, Loan.application_id)
        .join(Loan, Loan.id == Reminder.loan_id)
        .where(Reminder.id == reminder_id)
        .with_for_update(of=Reminder)
        .execution_options(populate_existing=True)
    )
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else (row[0], row[1])


async def report(
    session: AsyncSession,
    reminder: Reminder,
    *,
    outcome: ReminderStatus,
    detail: str | None,
    by: str,
) -> Reminder:
    """Record what became of a locked, QUEUED reminder."""
    stmt = (
        update(Reminder)
        .where(Reminder.id == reminder.id, Reminder.status == ReminderStatus.QUEUED)
        .values(status=outcome, detail=detail, reported_by=by, reported_at=func.now())
        .returning(Reminder)
        .execution_options(populate_existing=True)
    )
    reported = await session.scalar(stmt)
    assert reported is not None
    return reported
