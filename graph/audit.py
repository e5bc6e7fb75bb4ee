"""The audit trail as clients read it: an application's chain of events, oldest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from db import models
from db.read_plan import Domain, PageArgs, TextGlobalId
from db.repositories import audit as audit_repo
from db.repositories.audit import ChainFilter
from graph.context import Info
from graph.errors import ClientError
from graph.ids import parse_global_id
from graph.permissions import READ
from graph.reads import Page, column, derived, order_of, reads, row_values
from graph.relay import (
    DEFAULT_PAGE_SIZE,
    After,
    Connection,
    First,
    build_connection,
    decode_cursor,
    page_request,
    row_cursor,
)
from lending.audit import chain_of


@strawberry.type(description="One recorded change. Audit events are never edited or deleted.")
class AuditEvent:
    """An audit event."""

    sequence: int = column("id", "Position in the whole trail (increasing).")
    at: datetime = column("at", "When the change was committed.")
    actor: str = column("actor", "The API key's name that made the change.")
    action: str = column("action", "What happened, such as application.decided.")
    entity_id: strawberry.ID = derived(
        TextGlobalId("entity_id"), "Global id of the changed object."
    )
    before: JSON | None = column("before", "The object's state before (JSON).")
    after: JSON | None = column("after", "The object's state after (JSON).")
    request_id: str | None = column("request_id", "The request that made the change.")
    idempotency_key: str | None = column("idempotency_key", "Its idempotency key, if any.")
    previous_hash: str | None = column(
        "previous_hash",
        "Hash of the previous event of the same application; null for the first.",
    )
    hash: str = column(
        "hash", "sha256(previousHash ‖ canonical JSON of the event): tampering breaks it."
    )

    @classmethod
    def from_row(cls, row: models.AuditEvent) -> AuditEvent:
        """The GraphQL view of an audit row."""
        return cls(**row_values(cls, row))


def audit_page(
    entity_id: str, first: int | None = DEFAULT_PAGE_SIZE, after: str | None = None
) -> PageArgs:
    """The checked arguments of `auditTrail`: the chain of an application or of a loan."""
    name = "SEQUENCE:ASC"
    cursor = decode_cursor(after, name, int) if after else None
    page = page_request(first, cursor, descending=False)
    parsed = parse_global_id(entity_id)
    if parsed is None:
        flt = ChainFilter()
    elif parsed[0] == "LoanApplication":
        flt = ChainFilter(chain=chain_of(parsed[1]))
    elif parsed[0] == "Loan":
        flt = ChainFilter(loan_key=parsed[1])
    else:
        raise ClientError("auditTrail takes the id of a LoanApplication or a Loan.")
    return PageArgs(flt, page, order_of(models.AuditEvent.id, name))


async def _chain(info: Info, flt: ChainFilter) -> str | None:
    if flt.loan_key is not None:
        loan = await info.context.loaders.loan_by_id.load(flt.loan_key)
        return chain_of(loan.application_id) if loan else None
    return flt.chain


@strawberry.type
class AuditQueries:
    """Root field for the audit trail."""

    @strawberry.field(
        description="Every recorded change to an application, its decisions, loan and "
        "payments, oldest first (give the application's or the loan's id).",
        permission_classes=[READ],
        metadata=reads(Page(Domain.AUDIT_EVENTS, audit_page)),
    )
    async def audit_trail(
        self,
        info: Info,
        entity_id: Annotated[
            strawberry.ID, strawberry.argument(description="A LoanApplication or Loan id.")
        ],
        first: First = DEFAULT_PAGE_SIZE,
        after: After = None,
    ) -> Connection[AuditEvent]:
        args = audit_page(entity_id, first, after)
        chain = await _chain(info, args.filter)
        db = info.context.db
        rows = await db.run(audit_repo.page_chain, chain, args.page) if chain else []

        async def count() -> int:
            return await db.run(audit_repo.count_chain, chain) if chain else 0

        return build_connection(
            rows,
            args.page,
            to_node=AuditEvent.from_row,
            cursor_of=row_cursor(args.order),
            count=count,
        )
