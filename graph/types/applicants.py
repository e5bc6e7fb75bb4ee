"""Applicants, identified by email (any case), with their applications and loans."""

from __future__ import annotations

from datetime import datetime

import strawberry

from db import models
from db.reads.plan import Column, Domain, PageArgs
from db.repositories.applicants import ApplicantFilter
from graph.compiled.reads import Page, column, private, reads
from graph.context import Info
from graph.enums import OrderDirection
from graph.relations import page_of, personal
from graph.relay import After, Before, Connection, First, Last, Node, paginate
from graph.types.applications import (
    ApplicationFilterArg,
    ApplicationOrderArg,
    LoanApplication,
    application_page,
)
from graph.types.loans import Loan, LoanFilterArg, loan_page
from lending.privacy import Data, Mask

APPLICATIONS = Page(Domain.APPLICATIONS, application_page, "id", "applicant_id")
LOANS = Page(Domain.LOANS, loan_page, "id", "applicant_id")


@strawberry.type(description="A person applying for loans, identified by email (any case).")
class Applicant(Node, table="applicants"):
    key: strawberry.Private[int] = private("id")
    full_name: str = column("full_name", "Full name as given on the first application.")
    email: str = personal(
        Column("email"), Data.CONTACT, "Email address; unique regardless of case.", Mask.EMAIL
    )
    phone: str | None = personal(
        Column("phone"), Data.CONTACT, "Phone number, if given.", Mask.PHONE
    )
    created_at: datetime = column("created_at", "When the applicant first applied.")

    @strawberry.field(
        description="The applicant's applications, newest first by default.",
        metadata=reads(APPLICATIONS),
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
        return await page_of(info, APPLICATIONS, args, self)

    @strawberry.field(
        description="The applicant's loans, most recently approved first.",
        metadata=reads(LOANS),
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
        return await page_of(info, LOANS, args, self)


@strawberry.input(description="Conditions on applicants; all given conditions must hold.")
class ApplicantFilterInput:
    email: str | None = strawberry.field(default=None, description="Exact email, any case.")
    name_contains: str | None = strawberry.field(
        default=None, description="Part of the full name, any case."
    )
    created_from: datetime | None = strawberry.field(
        default=None, description="Created at or after this instant."
    )
    created_to: datetime | None = strawberry.field(
        default=None, description="Created before this instant."
    )


@strawberry.input(description="How to order applicants: by creation time, ties broken by id.")
class ApplicantOrder:
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.ASC, description="Which way."
    )


def applicant_page(
    first: int | None = None,
    after: str | None = None,
    filter: ApplicantFilterInput | None = None,
    order_by: ApplicantOrder | None = None,
    last: int | None = None,
    before: str | None = None,
) -> PageArgs:
    """The checked arguments of `applicants`."""
    f = filter or ApplicantFilterInput()
    flt = ApplicantFilter(
        email=f.email,
        name_contains=f.name_contains,
        created_from=f.created_from,
        created_to=f.created_to,
    )
    direction = (order_by or ApplicantOrder()).direction
    return paginate(
        first,
        after,
        last=last,
        before=before,
        sort=models.Applicant.created_at,
        name=f"CREATED_AT:{direction.value}",
        descending=direction is OrderDirection.DESC,
        filter=flt,
    )
