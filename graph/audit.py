"""Root field for the audit trail: an application's chain of events, oldest first."""

from __future__ import annotations

from typing import Annotated

import strawberry

from db.reads.plan import Domain, PageArgs
from db.repositories.audit import ChainFilter
from graph.compiled.reads import Page, reads
from graph.context import Info
from graph.permissions import OVERSEE
from graph.relations import page_of
from graph.relay import After, Before, Connection, First, Last, connection
from graph.types.audit import AuditEvent, audit_page
from graph.types.loans import Loan
from lending.audit import chain_of

AUDIT_TRAIL = Page(Domain.AUDIT_EVENTS, audit_page)


async def _no_events(_: int | None) -> int:
    return 0


@strawberry.type
class AuditQueries:
    @OVERSEE.field(
        "Every recorded change to an application, its decisions, loan and payments, oldest "
        "first (give the application's or the loan's id).",
        metadata=reads(AUDIT_TRAIL),
    )
    async def audit_trail(
        self,
        info: Info,
        entity_id: Annotated[
            strawberry.ID, strawberry.argument(description="A LoanApplication or Loan id.")
        ],
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[AuditEvent]:
        args = audit_page(entity_id, first, after, last, before)
        chain = args.filter.chain
        if args.filter.loan_key is not None:
            loan = await Loan.load(info.context.loaders, args.filter.loan_key)
            chain = chain_of(loan.application_key) if loan else None
        if chain is None:
            return connection([], args, AuditEvent.from_row, _no_events)
        return await page_of(info, AUDIT_TRAIL, PageArgs(ChainFilter(chain), args.page, args.order))
