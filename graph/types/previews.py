"""Schedule previews: what a loan would get, computed without booking anything."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import strawberry

from lending.schedule import Schedule


@strawberry.type(description="One instalment of a previewed schedule (nothing is booked).")
class ScheduledInstallment:
    number: int = strawberry.field(description="Position in the schedule, from 1.")
    due_date: date = strawberry.field(description="When it would fall due.")
    principal_due: Decimal = strawberry.field(description="Principal part.")
    interest_due: Decimal = strawberry.field(description="Interest part.")
    total_due: Decimal = strawberry.field(description="Principal plus interest.")
    balance_after: Decimal = strawberry.field(description="Principal left after this instalment.")


@strawberry.type(description="A schedule computed by the same function that books loans.")
class SchedulePreview:
    installments: list[ScheduledInstallment] = strawberry.field(description="Instalments.")
    total_principal: Decimal = strawberry.field(description="Sum of principal; the amount.")
    total_interest: Decimal = strawberry.field(description="Sum of interest.")
    total_payable: Decimal = strawberry.field(description="Principal plus interest.")
    maturity_date: date = strawberry.field(description="Due date of the last instalment.")

    @classmethod
    def from_schedule(cls, schedule: Schedule) -> SchedulePreview:
        """The GraphQL view of a computed schedule."""
        return cls(
            installments=[
                ScheduledInstallment(
                    number=i.number,
                    due_date=i.due_date,
                    principal_due=i.principal,
                    interest_due=i.interest,
                    total_due=i.total,
                    balance_after=i.balance_after,
                )
                for i in schedule.installments
            ],
            total_principal=schedule.total_principal,
            total_interest=schedule.total_interest,
            total_payable=schedule.total_payable,
            maturity_date=schedule.maturity_date,
        )
