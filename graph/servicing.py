"""Root fields for collections and schedules: overdue instalments, and schedule previews."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

import strawberry

from db.reads.plan import Domain
from graph.compiled.reads import Page, reads
from graph.context import Info
from graph.errors import UserError, user_errors
from graph.permissions import OVERSEE, READ
from graph.relations import page_of
from graph.relay import After, Before, Connection, First, Last
from graph.types.previews import SchedulePreview
from graph.types.servicing import Installment, overdue_page
from lending.errors import DomainError, DomainErrors
from lending.services import loans as service
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

OVERDUE = Page(Domain.OVERDUE_INSTALLMENTS, overdue_page)


@strawberry.input(description="Loan terms given explicitly instead of a product's.")
class ScheduleTermsInput:
    currency: str = strawberry.field(description="ISO 4217 currency code, such as USD or JPY.")
    annual_interest_rate: Decimal = strawberry.field(description="Annual rate in percent.")
    amortization: AmortizationMethod = strawberry.field(description="How instalments are split.")
    frequency: RepaymentFrequency = strawberry.field(description="How often instalments fall due.")
    day_count: DayCount = strawberry.field(description="How interest is counted.")


@strawberry.input(description="What to preview: a product's terms or explicit ones.")
class SchedulePreviewInput:
    product_code: str | None = strawberry.field(
        default=None, description="Use this active product's terms and bounds."
    )
    terms: ScheduleTermsInput | None = strawberry.field(
        default=None, description="Or these explicit terms (exactly one of the two)."
    )
    amount: Decimal = strawberry.field(description="Principal.")
    term_months: int = strawberry.field(
        description="Term in months; biweekly and weekly loans get 26 or 52 instalments a year "
        "over the same span, rounded up."
    )
    disbursed_on: date | None = strawberry.field(
        default=None, description="Disbursement date; default today (UTC)."
    )
    first_due_date: date | None = strawberry.field(
        default=None,
        description="First due date; default one period after disbursement. Monthly dates keep "
        "its day of month.",
    )


@strawberry.type(description="Result of previewSchedule.")
class SchedulePreviewPayload:
    schedule: SchedulePreview | None = strawberry.field(
        description="The schedule; null when there are userErrors."
    )
    user_errors: list[UserError] = strawberry.field(description="Why there is no schedule.")


@strawberry.type
class ServicingQueries:
    @OVERSEE.field(
        "Instalments of active loans overdue on a date, most overdue first.",
        metadata=reads(OVERDUE),
    )
    async def overdue_installments(
        self,
        info: Info,
        as_of: Annotated[date, strawberry.argument(description="The date to assess on.")],
        min_days_past_due: Annotated[
            int, strawberry.argument(description="Only instalments at least this many days late.")
        ] = 1,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        not_reminded_since: Annotated[
            date | None,
            strawberry.argument(
                description="Only instalments with no reminder requested on or after this day "
                "(failed ones do not count): who still needs one."
            ),
        ] = None,
    ) -> Connection[Installment]:
        args = overdue_page(
            as_of, min_days_past_due, first, after, not_reminded_since, last=last, before=before
        )
        return await page_of(info, OVERDUE, args)

    @READ.field("The schedule a loan would get, from the same function that books loans.")
    async def preview_schedule(
        self,
        info: Info,
        input: Annotated[SchedulePreviewInput, strawberry.argument(description="What to preview.")],
    ) -> SchedulePreviewPayload:
        terms = input.terms
        explicit = (
            service.ExplicitTerms(
                currency=terms.currency,
                annual_interest_rate=terms.annual_interest_rate,
                amortization=terms.amortization,
                frequency=terms.frequency,
                day_count=terms.day_count,
            )
            if terms
            else None
        )
        try:
            schedule = await info.context.db.run(
                service.preview_schedule,
                product_code=input.product_code,
                explicit=explicit,
                amount=input.amount,
                term_months=input.term_months,
                disbursed_on=input.disbursed_on,
                first_due_date=input.first_due_date,
            )
        except (DomainError, DomainErrors) as exc:
            return SchedulePreviewPayload(schedule=None, user_errors=user_errors(exc))
        return SchedulePreviewPayload(
            schedule=SchedulePreview.from_schedule(schedule), user_errors=[]
        )
