"""The audit trail as clients read it: an application's chain of events, oldest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from db import models
from db.repositories import audit as audit_repo
from graph.context import Info
from graph.errors import ClientError
from graph.ids import parse_global_id, to_global_id
from graph.permissions import READ
from graph.relay import (
    DEFAULT_PAGE_SIZE,
    After,
    Connection,
    First,
    build_connection,
    decode_cursor,
    encode_cursor,
    page_request,
)
from lending.services.audit import chain_of


@strawberry.type(description="One recorded change. Audit events are never edited or deleted.")
class AuditEvent:
    """An audit event."""

    sequence: int = strawberry.field(description="Position in the whole trail (increasing).")
    at: datetime = strawberry.field(description="When the change was committed.")
    actor: str = strawberry.field(description="The API key's name that made the change.")
    action: str = strawberry.field(description="What happened, such as application.decided.")
    entity_id: strawberry.ID = strawberry.field(description="Global id of the changed object.")
    before: JSON | None = strawberry.field(description="The object's state before (JSON).")
    after: JSON | None = strawberry.field(description="The object's state after (JSON).")
    request_id: str | None = strawberry.field(description="The request that made the change.")
    idempotency_key: str | None = strawberry.field(description="Its idempotency key, if any.")
    previous_hash: str | None = strawberry.field(
        description="Hash of the previous event of the same application; null for the first."
    )
    hash: str = strawberry.field(
        description="sha256(previousHash ‖ canonical JSON of the event): tampering breaks it."
    )

    @classmethod
    def from_row(cls, row: models.AuditEvent) -> AuditEvent:
        """The GraphQL view of an audit row."""
        type_name, _, key = row.entity_id.partition(":")
        return cls(
            sequence=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            entity_id=strawberry.ID(to_global_id(type_name, int(key))),
            before=row.before,  # type: ignore[arg-type]
            after=row.after,  # type: ignore[arg-type]
            request_id=row.request_id,
            idempotency_key=row.idempotency_key,
            previous_hash=row.previous_hash,
            hash=row.hash,
        )


async def _chain(info: Info, entity_id: str) -> str | None:
    parsed = parse_global_id(entity_id)
    if parsed is None:
        return None
    type_name, key = parsed
    if type_name == "LoanApplication":
        return chain_of(key)
    if type_name == "Loan":
        loan = await info.context.loaders.loan_by_id.load(key)
        return chain_of(loan.application_id) if loan else None
    raise ClientError("auditTrail takes the id of a LoanApplication or a Loan.")


@strawberry.type
class AuditQueries:
    """Root field for the audit trail."""

    @strawberry.field(
        description="Every recorded change to an application, its decisions, loan and "
        "payments, oldest first (give the application's or the loan's id).",
        permission_classes=[READ],
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
        order = "SEQUENCE:ASC"
        cursor = decode_cursor(after, order, int) if after else None
        page = page_request(first, cursor, descending=False)
        chain = await _chain(info, entity_id)
        db = info.context.db
        rows = await db.run(audit_repo.page_chain, chain, page) if chain else []

        async def count() -> int:
            return await db.run(audit_repo.count_chain, chain) if chain else 0

        return build_connection(
            rows,
            page,
            to_node=AuditEvent.from_row,
            cursor_of=lambda r: encode_cursor(order, r.id, r.id),
            count=count,
        )
