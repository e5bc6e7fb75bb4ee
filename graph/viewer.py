"""`viewer`: who is asking, and a borrower's own applicant, applications and loans at once."""

from __future__ import annotations

import strawberry

from db.reads.plan import PageArgs
from graph.applications import APPLICATIONS
from graph.compiled.planner import NOBODY
from graph.compiled.reads import Caller, OwnApplicant, OwnPage, reads
from graph.compiled.reads import Viewer as ViewerRoot
from graph.context import Info
from graph.loans import LOANS
from graph.permissions import READ
from graph.relations import page_of
from graph.relay import After, Before, Connection, First, Last
from graph.scope import owner_key
from graph.types.applicants import Applicant
from graph.types.applications import (
    ApplicationFilterArg,
    ApplicationOrderArg,
    LoanApplication,
    application_page,
)
from graph.types.loans import Loan, LoanFilterArg, loan_page
from lending.access import Role


def own(info: Info, args: PageArgs) -> PageArgs:
    """A list's arguments scoped to the caller's own rows: a borrower's; none for staff."""
    principal = info.context.principal
    return args.owned_by((principal.owner if principal else None) or NOBODY)


@strawberry.type(
    description="Who is asking. For a borrower, their own applicant, applications and loans "
    "(for staff those are null and empty: use the root lists)."
)
class Viewer:
    name: str = strawberry.field(
        description="Your name, as recorded on what you do.", metadata=reads(Caller("name"))
    )
    role: Role = strawberry.field(description="Your role.", metadata=reads(Caller("role")))

    @strawberry.field(
        description="You as an applicant; null before you first apply, and for staff.",
        metadata=reads(OwnApplicant()),
    )
    async def applicant(self, info: Info) -> Applicant | None:
        key = await owner_key(info)
        return None if key is None else await Applicant.load(info.context.loaders, key)

    @strawberry.field(
        description="Your applications, newest submission first by default.",
        metadata=reads(OwnPage(APPLICATIONS)),
    )
    async def applications(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: ApplicationFilterArg = None,
        order_by: ApplicationOrderArg = None,
    ) -> Connection[LoanApplication]:
        args = application_page(first, after, filter, order_by, last=last, before=before)
        return await page_of(info, APPLICATIONS, own(info, args))

    @strawberry.field(
        description="Your loans, most recently approved first.", metadata=reads(OwnPage(LOANS))
    )
    async def loans(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: LoanFilterArg = None,
    ) -> Connection[Loan]:
        args = loan_page(first, after, filter, last=last, before=before)
        return await page_of(info, LOANS, own(info, args))


@strawberry.type
class ViewerQueries:
    @READ.field(
        "Who is asking; for a borrower, their own applicant, applications and loans.",
        metadata=reads(ViewerRoot()),
    )
    async def viewer(self, info: Info) -> Viewer:
        principal = info.context.principal
        assert principal is not None, "guarded: only authenticated callers get here"
        return Viewer(name=principal.name, role=principal.role)
