"""Applicants: the type, its nested applications, and the root queries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from db.repositories import applicants as applicant_repo
from db.repositories.applicants import ApplicantFilter
from graph.context import Info
from graph.enums import OrderDirection
from graph.ids import parse_global_id, to_global_id
from graph.inputs import refuse_nul
from graph.permissions import READ
from graph.relay import (
    DEFAULT_PAGE_SIZE,
    After,
    Connection,
    First,
    GlobalId,
    Node,
    build_connection,
    decode_cursor,
    encode_cursor,
    page_request,
)

if TYPE_CHECKING:
    from graph.applications import ApplicationFilterInput, ApplicationOrder, LoanApplication
    from graph.loans import Loan, LoanFilterInput


@strawberry.type(description="A person applying for loans, identified by email (any case).")
class Applicant(Node):
    """An applicant."""

    key: strawberry.Private[int]
    full_name: str = strawberry.field(description="Full name as given on the first application.")
    email: str = strawberry.field(description="Email address; unique regardless of case.")
    phone: str | None = strawberry.field(description="Phone number, if given.")
    created_at: datetime = strawberry.field(description="When the applicant first applied.")

    @classmethod
    def from_row(cls, row: models.Applicant) -> Applicant:
        """The GraphQL view of an applicant row."""
        return cls(
            id=strawberry.ID(to_global_id("Applicant", row.id)),
            key=row.id,
            full_name=row.full_name,
            email=row.email,
            phone=row.phone,
            created_at=row.created_at,
        )

    @strawberry.field(description="The applicant's applications, newest first by default.")
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
        from graph.applications import nested_applications

        return await nested_applications(info, self.key, first, after, filter, order_by)

    @strawberry.field(description="The applicant's loans, most recently approved first.")
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
        from graph.loans import nested_loans

        return await nested_loans(info, self.key, first, after, filter)


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


@strawberry.type
class ApplicantQueries:
    """Root fields for applicants."""

    @strawberry.field(
        description="One applicant by global id; null when there is none.",
        permission_classes=[READ],
    )
    async def applicant(
        self,
        info: Info,
        id: GlobalId,
    ) -> Applicant | None:
        parsed = parse_global_id(id)
        if parsed is None or parsed[0] != "Applicant":
            return None
        row = await info.context.loaders.applicant_by_id.load(parsed[1])
        return Applicant.from_row(row) if row else None

    @strawberry.field(description="Applicants, oldest first by default.", permission_classes=[READ])
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
        f = filter or ApplicantFilterInput()
        refuse_nul(f)
        flt = ApplicantFilter(
            email=f.email,
            name_contains=f.name_contains,
            created_from=f.created_from,
            created_to=f.created_to,
        )
        direction = (order_by or ApplicantOrder()).direction
        order = f"CREATED_AT:{direction.value}"
        cursor = decode_cursor(after, order, datetime) if after else None
        page = page_request(first, cursor, descending=direction is OrderDirection.DESC)
        rows = await info.context.db.run(applicant_repo.page_applicants, flt, page)
        return build_connection(
            rows,
            page,
            to_node=Applicant.from_row,
            cursor_of=lambda r: encode_cursor(order, r.created_at, r.id),
            count=lambda: info.context.db.run(applicant_repo.count_applicants, flt),
        )
