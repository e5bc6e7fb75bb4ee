"""Audit events: the recorded changes of an application's chain."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from db import models
from db.reads.plan import Column, PageArgs, TextGlobalId
from db.repositories.audit import ChainFilter
from graph.compiled.reads import Personal, column, derived, reads
from graph.context import Info
from graph.errors import ClientError
from graph.ids import read_id
from graph.relay import RowView, paginate
from lending.audit import chain_of
from lending.privacy import Data, describe, others_request, snapshot


@strawberry.type(description="One recorded change. Audit events are never edited or deleted.")
class AuditEvent(RowView, table="audit_events"):
    sequence: int = column("id", "Position in the whole trail (increasing).")
    at: datetime = column("at", "When the change was committed.")
    actor: str = column("actor", "The API key's name that made the change.")
    action: str = column("action", "What happened, such as application.decided.")
    entity_id: strawberry.ID = derived(
        TextGlobalId("entity_id"), "Global id of the changed object."
    )

    @strawberry.field(
        description="The object's state before (JSON). " + describe(Data.SNAPSHOT),
        metadata=reads(Personal(Column("before"), Data.SNAPSHOT)),
    )
    def before(self, info: Info) -> JSON | None:
        seen: JSON | None = snapshot(info.context.role, self.row.before)
        return seen

    @strawberry.field(
        description="The object's state after (JSON). " + describe(Data.SNAPSHOT),
        metadata=reads(Personal(Column("after"), Data.SNAPSHOT)),
    )
    def after(self, info: Info) -> JSON | None:
        seen: JSON | None = snapshot(info.context.role, self.row.after)
        return seen

    @strawberry.field(
        description="The request that made the change. Yours always. "
        + describe(Data.OTHERS_REQUESTS),
        metadata=reads(Personal(Column("request_id"), Data.OTHERS_REQUESTS)),
    )
    def request_id(self, info: Info) -> str | None:
        return others_request(
            info.context.role, self.actor, info.context.actor, self.row.request_id
        )

    @strawberry.field(
        description="Its idempotency key, if any. Yours always. " + describe(Data.OTHERS_REQUESTS),
        metadata=reads(Personal(Column("idempotency_key"), Data.OTHERS_REQUESTS)),
    )
    def idempotency_key(self, info: Info) -> str | None:
        role, actor = info.context.role, info.context.actor
        return others_request(role, self.actor, actor, self.row.idempotency_key)

    previous_hash: str | None = column(
        "previous_hash",
        "Hash of the previous event of the same application; null for the first.",
    )
    hash: str = column(
        "hash", "sha256(previousHash ‖ canonical JSON of the event): tampering breaks it."
    )


def audit_page(
    entity_id: str,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> PageArgs:
    """The checked arguments of `auditTrail`: the chain of an application or of a loan."""
    args = paginate(
        first, after, last=last, before=before, sort=models.AuditEvent.id, name="SEQUENCE:ASC"
    )
    parsed = read_id(entity_id, "entityId")
    if parsed[0] == "LoanApplication":
        flt = ChainFilter(chain=chain_of(parsed[1]))
    elif parsed[0] == "Loan":
        flt = ChainFilter(loan_key=parsed[1])
    else:
        raise ClientError("auditTrail takes the id of a LoanApplication or a Loan.")
    return PageArgs(flt, args.page, args.order)
