"""Audit events: the recorded changes of an application's chain."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from db import models
from db.reads.plan import PageArgs, TextGlobalId
from db.repositories.audit import ChainFilter
from graph.compiled.reads import column, derived
from graph.errors import ClientError
from graph.ids import read_id
from graph.relay import RowView, paginate
from lending.audit import chain_of


@strawberry.type(description="One recorded change. Audit events are never edited or deleted.")
class AuditEvent(RowView, table="audit_events"):
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
