"""Applicants: the type, its nested applications, and the root queries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from db.read_plan import Domain, PageArgs
from db.repositories import applicants as applicant_repo
from db.repositories.applicants import ApplicantFilter
from graph.applications import application_page, nested_applications
from graph.context import Info
from graph.enums import OrderDirection
from graph.ids import key_for
from graph.inputs import refuse_nul
from graph.loans import loan_page, nested_loans
from graph.permissions import READ
from graph.reads import ById, Page, column, order_of, private, reads
from graph.relay import (
    DEFAULT_PAGE_SIZE,
    After,
    Connection,
    First,
    GlobalId,
    Node,
    build_connection,
    decode_cursor,
    page_request,
    row_cursor,
)

if TYPE_CHECKING:
    from graph.applications import ApplicationFilterInput, ApplicationOrder, LoanApplication
    from graph.loans import Loan, LoanFilterInput


@strawberry.type(description="A person applying for loans, identified by email (any case).")
class Applicant(Node):
    """An applicant."""

    key: strawberry.Private[int] = private("id")
    full_name: str = column("full_name", "Full name as given on the first application.")
    email: str = column("email", "Email address; unique regardless of case.")
    phone: str | None = column("phone", "Phone number, if given.")
    created_at: datetime = column("created_at", "When the applicant first applied.")

    @strawberry.field(
        description="The applicant's applications, newest first by default.",
        metadata=reads(Page(Domain.APPLICATIONS, application_page, "id", "applicant_id")),
    )
    async def applications(
        self,
        info: Info,
        first: First = DEFAULT_PAGE_SIZE,
        after: After = None,
        filter: Annotated[
            Annotated[ApplicationFilterInput, strawberry.lazy("graph.applications")] | None,
            strawberry.argument(description="Conditions on applications."),
        ] = None,
        order_by: Annotated[
            Annotated[ApplicationOrder, strawberry.lazy("graph.applications")] | None,
            strawberry.argument(description="Ordering; default newest submission first."),
        ] = None,
    ) -> Connection[Annotated[LoanApplication, strawberry.lazy("graph.applications")]]:
        args = application_page(first, after, filter, order_by)
        return await nested_applications(info, self.key, args)

    @strawberry.field(
        description="The applicant's loans, most recently approved first.",
        metadata=reads(Page(Domain.LOANS, loan_page, "id", "applicant_id")),
    )
    async def loans(
        self,
        info: Info,
        first: First = DEFAULT_PAGE_SIZE,
        after: After = None,
        filter: Annotated[
            Annotated[LoanFilterInput, strawberry.lazy("graph.loans")] | None,
            strawberry.argument(description="Conditions on loans."),
        ] = None,
    ) -> Connection[Annotated[Loan, strawberry.lazy("graph.loans")]]:
        return await nested_loans(info, self.key, loan_page(first, after, filter))


@strawberry.input(description="Conditions on applicants; all given conditions must hold.")
class ApplicantFilterInput:
    """Applicant filter."""

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
    """Applicant ordering."""

    direction: OrderDirection = strawberry.field(
        default=OrderDirection.ASC, description="Which way."
    )


def applicant_page(
    first: int | None = DEFAULT_PAGE_SIZE,
    after: str | None = None,
    filter: ApplicantFilterInput | None = None,
    order_by: ApplicantOrder | None = None,
) -> PageArgs:
    """The checked arguments of `applicants`."""
    f = filter or ApplicantFilterInput()
    refuse_nul(f)
    flt = ApplicantFilter(
        email=f.email,
        name_contains=f.name_contains,
        created_from=f.created_from,
        created_to=f.created_to,
    )
    direction = (order_by or ApplicantOrder()).direction
    name = f"CREATED_AT:{direction.value}"
    cursor = decode_cursor(after, name, datetime) if after else None
    page = page_request(first, cursor, descending=direction is OrderDirection.DESC)
    return PageArgs(flt, page, order_of(models.Applicant.created_at, name))


applicant_key = key_for("Applicant")


@strawberry.type
class ApplicantQueries:
    """Root fields for applicants."""

    @strawberry.field(
        description="One applicant by global id; null when there is none.",
        permission_classes=[READ],
        metadata=reads(ById("applicants", applicant_key)),
    )
    async def applicant(
        self,
        info: Info,
        id: GlobalId,
    ) -> Applicant | None:
        key = applicant_key(id)
        row = await info.context.loaders.applicant_by_id.load(key) if key else None
        return Applicant.from_row(row) if row else None

    @strawberry.field(
        description="Applicants, oldest first by default.",
        permission_classes=[READ],
        metadata=reads(Page(Domain.APPLICANTS, applicant_page)),
    )
    async def applicants(
        self,
        info: Info,
        first: First = DEFAULT_PAGE_SIZE,
        after: After = None,
        filter: Annotated[
            ApplicantFilterInput | None,
            strawberry.argument(description="Conditions on applicants."),
        ] = None,
        order_by: Annotated[
            ApplicantOrder | None,
            strawberry.argument(description="Ordering; default oldest first."),
        ] = None,
    ) -> Connection[Applicant]:
        args = applicant_page(first, after, filter, order_by)
        db = info.context.db
        rows = await db.run(applicant_repo.page_applicants, args.filter, args.page)
        return build_connection(
            rows,
            args.page,
            to_node=Applicant.from_row,
            cursor_of=row_cursor(args.order),
            count=lambda: db.run(applicant_repo.count_applicants, args.filter),
        )
