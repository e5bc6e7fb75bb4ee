"""Root fields for applicants."""

from __future__ import annotations

from typing import Annotated

import strawberry

from db.reads.plan import Domain
from graph.compiled.reads import Page, reads
from graph.context import Info
from graph.permissions import READ
from graph.relations import lookup, page_of
from graph.relay import After, Before, Connection, First, Last
from graph.types.applicants import (
    Applicant,
    ApplicantFilterInput,
    ApplicantOrder,
    applicant_page,
)

APPLICANTS = Page(Domain.APPLICANTS, applicant_page)


@strawberry.type
class ApplicantQueries:
    applicant: Applicant | None = lookup(
        READ, Applicant, "One applicant by global id; null when there is none."
    )

    @READ.field("Applicants, oldest first by default.", metadata=reads(APPLICANTS))
    async def applicants(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Annotated[
            ApplicantFilterInput | None,
            strawberry.argument(description="Conditions on applicants."),
        ] = None,
        order_by: Annotated[
            ApplicantOrder | None,
            strawberry.argument(description="Ordering; default oldest first."),
        ] = None,
    ) -> Connection[Applicant]:
        args = applicant_page(first, after, filter, order_by, last=last, before=before)
        return await page_of(info, APPLICANTS, args)
