"""Subscriptions: loan events, announced by PostgreSQL once their transaction commits."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError

from db.listener import INTERRUPTED
from graph import metrics
from graph.context import Info
from graph.enums import graphql_enum
from graph.errors import ClientError, unavailable_error
from graph.ids import key_of, to_global_id
from graph.permissions import READ
from lending.audit import LoanEventType
from lending.errors import DomainError

graphql_enum(
    LoanEventType,
    "What happened to an application or loan.",
    {
        LoanEventType.SUBMITTED: (
            "An application was submitted (no loan yet, so only unfiltered subscribers hear it)."
        ),
        LoanEventType.DECIDED: "A decision was recorded (loanId: the loan an approval created).",
        LoanEventType.WITHDRAWN: "The application was withdrawn.",
        LoanEventType.DISBURSED: "The loan was paid out.",
        LoanEventType.PAYMENT_RECORDED: "A payment was recorded.",
        LoanEventType.PAYMENT_REVERSED: "A payment was reversed.",
        LoanEventType.PAID_OFF: "Nothing is left to pay.",
        LoanEventType.REOPENED: "A reversed payment left something to pay on a PAID_OFF loan.",
        LoanEventType.SETTLED: "The loan was settled early and is PAID_OFF.",
        LoanEventType.CANCELLED: "The loan was cancelled before it was paid out.",
        LoanEventType.WRITTEN_OFF: "The loan was written off.",
        LoanEventType.REMINDER_REQUESTED: (
            "A reminder was requested on an overdue instalment (entityId: the Reminder); a "
            "delivery worker sends it and reports back."
        ),
        LoanEventType.REMINDER_DELIVERED: "A reminder was reported delivered.",
        LoanEventType.REMINDER_FAILED: "A reminder was reported not delivered.",
    },
)


@strawberry.type(description="A committed change; query the ids for the details.")
class LoanEvent:
    type: LoanEventType = strawberry.field(description="What happened.")
    application_id: strawberry.ID = strawberry.field(description="The application's global id.")
    loan_id: strawberry.ID | None = strawberry.field(description="The loan's global id, if any.")
    entity_id: strawberry.ID = strawberry.field(
        description="Global id of the object changed (decision, payment, loan…)."
    )
    actor: str = strawberry.field(description="Who made the change.")
    at: datetime = strawberry.field(description="When.")

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> LoanEvent:
        """The GraphQL view of a notification."""
        type_name, _, key = payload["entityId"].partition(":")
        loan = payload.get("loanId")
        return cls(
            type=LoanEventType(payload["type"]),
            application_id=strawberry.ID(to_global_id("LoanApplication", payload["applicationId"])),
            loan_id=strawberry.ID(to_global_id("Loan", loan)) if loan else None,
            entity_id=strawberry.ID(to_global_id(type_name, int(key))),
            actor=payload["actor"],
            at=datetime.fromisoformat(payload["at"]),
        )


def _key(global_id: str | None, type_name: str, field: str) -> int | None:
    if global_id is None:
        return None
    try:
        return key_of(global_id, type_name, field)
    except DomainError as exc:
        raise ClientError(exc.message) from None


def _interrupted(info: Info) -> dict[str, Any]:
    found = unavailable_error(
        "the database stopped sending events; they resume by themselves once it is back",
        info.context.request_id,
    )
    return {"message": found["message"], "extensions": found["extensions"]}


@strawberry.type
class EventSubscriptions:
    @READ.subscription(
        "Changes to one application and its loan (or to everything when no id is given), from "
        "any server process, once committed. If the database goes away, the subscription gets "
        "one SERVICE_UNAVAILABLE error (events committed until it is back are not heard: "
        "re-read what you follow) and carries on by itself."
    )
    async def loan_events(
        self,
        info: Info,
        application_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this application.")
        ] = None,
        loan_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="Only this loan.")
        ] = None,
    ) -> AsyncGenerator[LoanEvent, None]:
        application = _key(application_id, "LoanApplication", "applicationId")
        loan = _key(loan_id, "Loan", "loanId")
        async with info.context.events.subscribe() as queue, metrics.open_subscription():
            while True:
                payload = await queue.get()
                if payload is INTERRUPTED:
                    yield GraphQLError(**_interrupted(info))  # type: ignore[misc]
                    continue
                if application is not None and payload["applicationId"] != application:
                    continue
                if loan is not None and payload.get("loanId") != loan:
                    continue
                yield LoanEvent.from_payload(payload)
