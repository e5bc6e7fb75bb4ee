"""Subscriptions: loan events, announced by PostgreSQL once their transaction commits."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from operator import attrgetter
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError

from db.listener import CLOSING, INTERRUPTED, Notification
from db.repositories import applications as application_repo
from graph.compiled.reads import SameAs, reads
from graph.context import Info
from graph.enums import graphql_enum
from graph.errors import ClientError, unavailable_error
from graph.ids import key_of, to_global_id
from graph.node import load_node
from graph.observability import metrics
from graph.permissions import READ
from graph.relay import Node
from graph.types.applications import LoanApplication
from graph.types.loans import Loan
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


@strawberry.type(
    description="A committed change, with the objects it concerns read as the event is "
    "delivered (with the subscriber's key), so a subscriber selects what it needs instead of "
    "querying again."
)
class LoanEvent:
    type: LoanEventType = strawberry.field(description="What happened.")
    application_id: strawberry.ID = strawberry.field(description="The application's global id.")
    loan_id: strawberry.ID | None = strawberry.field(description="The loan's global id, if any.")
    entity_id: strawberry.ID = strawberry.field(
        description="Global id of the object changed (decision, payment, loan…)."
    )
    actor: str = strawberry.field(description="Who made the change.")
    at: datetime = strawberry.field(description="When.")
    application_key: strawberry.Private[int]
    loan_key: strawberry.Private[int | None]
    entity_ref: strawberry.Private[tuple[str, int]]
    shared: strawberry.Private[dict[Any, Any]]  # reads shared by this event's subscribers

    @classmethod
    def of(cls, event: Notification) -> LoanEvent:
        """The GraphQL view of a notification: one object for all its subscribers (it holds
        ids only; what each subscriber reads of it is its own)."""
        found = event.shared.get(cls)
        if found is None:
            found = event.shared[cls] = cls._made(event)
        assert isinstance(found, LoanEvent)
        return found

    @classmethod
    def _made(cls, event: Notification) -> LoanEvent:
        payload = event.payload
        type_name, _, key = payload["entityId"].partition(":")
        loan = payload.get("loanId")
        return cls(
            type=LoanEventType(payload["type"]),
            application_id=strawberry.ID(to_global_id("LoanApplication", payload["applicationId"])),
            loan_id=strawberry.ID(to_global_id("Loan", loan)) if loan else None,
            entity_id=strawberry.ID(to_global_id(type_name, int(key))),
            actor=payload["actor"],
            at=datetime.fromisoformat(payload["at"]),
            application_key=payload["applicationId"],
            loan_key=loan,
            entity_ref=(type_name, int(key)),
            shared=event.shared,
        )

    @strawberry.field(
        description="The application, as it is when the event is delivered.",
        metadata=reads(SameAs("application", attrgetter("application_key"))),
    )
    async def application(self, info: Info) -> LoanApplication:
        found = await LoanApplication.load(info.context.loaders, self.application_key)
        assert found is not None, "applications are never deleted"
        return found

    @strawberry.field(
        description="The loan, if the application has one, as it is when the event is delivered.",
        metadata=reads(SameAs("loan", attrgetter("loan_key"))),
    )
    async def loan(self, info: Info) -> Loan | None:
        if self.loan_key is None:
            return None
        return await Loan.load(info.context.loaders, self.loan_key)

    @strawberry.field(
        description="The object changed (what `entityId` names: a decision, payment, loan, "
        "reminder…), as it is when the event is delivered.",
        metadata=reads(SameAs("node", attrgetter("entity_ref"))),
    )
    async def entity(self, info: Info) -> Node | None:
        return await load_node(info, self.entity_ref)


INTERRUPTED_REASON = (
    "the database stopped sending events; they resume by themselves once it is back"
)
CLOSING_REASON = "the server is restarting: subscribe again (to another process)"


def _key(global_id: str | None, type_name: str, field: str) -> int | None:
    if global_id is None:
        return None
    try:
        return key_of(global_id, type_name, field)
    except DomainError as exc:
        raise ClientError(exc.message) from None


MAX_KNOWN_APPLICATIONS = 1024  # a borrower's subscription remembers whose these are


def _ownership(info: Info) -> Callable[[int], Awaitable[bool]]:
    """Whether an event's application is one the caller may follow: a borrower's own (an
    application never changes applicant, so each answer is remembered), any for staff."""
    owner = info.context.principal.owner if info.context.principal else None
    known: dict[int, bool] = {}

    async def owned(application_key: int) -> bool:
        if owner is None:
            return True
        if application_key not in known:
            if len(known) >= MAX_KNOWN_APPLICATIONS:
                known.clear()
            async with info.context.sessionmaker() as session:
                known[application_key] = await application_repo.owned_application(
                    session, application_key, owner
                )
        return known[application_key]

    return owned


def _unavailable(info: Info, reason: str) -> GraphQLError:
    found = unavailable_error(reason, info.context.request_id)
    return GraphQLError(found["message"], extensions=found["extensions"])


@strawberry.type
class EventSubscriptions:
    @READ.subscription(
        "Changes to one application and its loan (or to everything when no id is given), from "
        "any server process, once committed; over a WebSocket (graphql-transport-ws) or over "
        "HTTP with `Accept: multipart/mixed;subscriptionSpec=1.0`. If the database goes away, "
        "the subscription gets one SERVICE_UNAVAILABLE error (events committed until it is "
        "back are not heard: re-read what you follow) and carries on by itself. When the "
        "server restarts, a WebSocket is closed with code 1012 and an HTTP stream ends with "
        "one retryable SERVICE_UNAVAILABLE error: subscribe again."
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
        owned = _ownership(info)
        async with info.context.events.subscribe() as queue, metrics.open_subscription():
            while True:
                event = await queue.get()
                if event is INTERRUPTED:
                    yield _unavailable(info, INTERRUPTED_REASON)  # type: ignore[misc]
                    continue
                if event is CLOSING:
                    if info.context.over_websocket:
                        continue  # the server closes the connection with 1012 itself
                    yield _unavailable(info, CLOSING_REASON)  # type: ignore[misc]
                    return
                payload = event.payload
                if application is not None and payload["applicationId"] != application:
                    continue
                if loan is not None and payload.get("loanId") != loan:
                    continue
                if not await owned(payload["applicationId"]):
                    continue
                yield LoanEvent.of(event)
