"""Root fields for collections reminders: request one, report on its delivery."""

from __future__ import annotations

import enum
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from graph.compiled.reads import AS_NODE, reads
from graph.context import Info
from graph.enums import graphql_enum
from graph.ids import key_of
from graph.mutation import IdempotentInput, Payload, run_mutation, written
from graph.permissions import REPORT_REMINDER, REQUEST_REMINDER
from graph.types.servicing import Reminder
from lending.audit import Caller
from lending.services import reminders as service
from lending.states import ReminderChannel, ReminderStatus


class DeliveryOutcome(enum.Enum):
    """What became of a reminder."""

    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


graphql_enum(
    DeliveryOutcome,
    "What the delivering service reports of a reminder.",
    {
        DeliveryOutcome.DELIVERED: "It reached the borrower.",
        DeliveryOutcome.FAILED: "It did not (say why in detail).",
    },
    name="ReminderDeliveryOutcome",
)


@strawberry.input(description="A reminder to send on an overdue instalment.")
class RequestReminderInput(IdempotentInput):
    installment_id: strawberry.ID = strawberry.field(
        description="Global id of an instalment OVERDUE today, on an ACTIVE loan."
    )
    channel: ReminderChannel = strawberry.field(
        description="How; at most one reminder per instalment and channel a day (UTC)."
    )
    message: str = strawberry.field(description="What to tell the borrower, 1 to 1000 characters.")


@strawberry.type(description="Result of requestReminder.")
class RequestReminderPayload(Payload):
    reminder: Reminder | None = strawberry.field(
        metadata=reads(AS_NODE),
        default=None,
        description="The reminder, QUEUED; null when there are userErrors.",
    )


@strawberry.input(description="What became of a queued reminder.")
class ReportReminderDeliveryInput(IdempotentInput):
    reminder_id: strawberry.ID = strawberry.field(description="Global id of a QUEUED reminder.")
    outcome: DeliveryOutcome = strawberry.field(description="Delivered or failed.")
    detail: str | None = strawberry.field(
        default=None,
        description="What the delivering service said, up to 1000 characters; required when "
        "FAILED.",
    )


@strawberry.type(description="Result of reportReminderDelivery.")
class ReportReminderDeliveryPayload(Payload):
    reminder: Reminder | None = strawberry.field(
        metadata=reads(AS_NODE),
        default=None,
        description="The reminder, DELIVERED or FAILED; null when there are userErrors.",
    )


@strawberry.type
class ReminderMutations:
    @REQUEST_REMINDER.mutation(
        "Ask for a reminder on an instalment OVERDUE today (NOT_OVERDUE otherwise; "
        "INVALID_TRANSITION unless the loan is ACTIVE). It is queued, announced on loanEvents "
        "for the delivering service, and audited; a second one the same day on the same "
        "channel is REMINDER_TOO_SOON."
    )
    async def request_reminder(
        self,
        info: Info,
        input: Annotated[RequestReminderInput, strawberry.argument(description="The reminder.")],
    ) -> RequestReminderPayload:
        async def work(session: AsyncSession, caller: Caller) -> RequestReminderPayload:
            reminder = await service.request_reminder(
                session,
                caller,
                installment_id=key_of(input.installment_id, "Installment", "installmentId"),
                channel=input.channel,
                message=input.message,
            )
            return RequestReminderPayload(reminder=written(Reminder, reminder))

        return await run_mutation(info, RequestReminderPayload, input, work)

    @REPORT_REMINDER.mutation(
        "Report what became of a QUEUED reminder, once (INVALID_TRANSITION afterwards)."
    )
    async def report_reminder_delivery(
        self,
        info: Info,
        input: Annotated[
            ReportReminderDeliveryInput, strawberry.argument(description="The report.")
        ],
    ) -> ReportReminderDeliveryPayload:
        async def work(session: AsyncSession, caller: Caller) -> ReportReminderDeliveryPayload:
            reminder = await service.report_delivery(
                session,
                caller,
                reminder_id=key_of(input.reminder_id, "Reminder", "reminderId"),
                outcome=ReminderStatus(input.outcome.value),
                detail=input.detail,
            )
            return ReportReminderDeliveryPayload(reminder=written(Reminder, reminder))

        return await run_mutation(info, ReportReminderDeliveryPayload, input, work)
