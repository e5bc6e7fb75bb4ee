"""Every cent explained: how an instalment and a settlement quote were computed.

The numbers come from the rules that made the amounts (``lending.schedule.period_interest``,
``lending.settlement.accrual``), not from a second description of them, so they cannot disagree.
"""

from __future__ import annotations

import enum
from datetime import date
from decimal import ROUND_DOWN, Decimal

import strawberry

from graph.context import Info
from lending.money import as_written, minor_digits
from lending.schedule import SHOWN_PLACES, calculations
from lending.schedule import InstallmentCalculation as Calculation
from lending.settlement import Accrual
from lending.terms import DayCount, RepaymentFrequency

_SHOWN = Decimal(1).scaleb(-SHOWN_PLACES)


def shown(exact: Decimal) -> Decimal:
    """An unrounded amount or ratio as shown: cut (not rounded) to SHOWN_PLACES places."""
    return exact.quantize(_SHOWN, rounding=ROUND_DOWN)


@strawberry.enum(description="How a computed amount is rounded to the currency's minor unit.")
class RoundingMode(enum.Enum):
    HALF_EVEN = strawberry.enum_value(
        "HALF_EVEN", description="To the nearest; a tie goes to the even digit (banker's)."
    )


@strawberry.type(description="How an amount was rounded.")
class Rounding:
    mode: RoundingMode = strawberry.field(description="The rounding rule.")
    places: int = strawberry.field(description="Decimal places kept: the currency's minor unit.")

    @classmethod
    def of(cls, currency: str) -> Rounding:
        """The rounding of amounts in ``currency``."""
        return cls(mode=RoundingMode.HALF_EVEN, places=minor_digits(currency))


@strawberry.type(
    description="How an instalment's amounts were computed: interest on the balance left "
    "before it, over its period, then its principal. interestExact = openingBalance × "
    "annualRate / 100 × days / daysInYear; interestRounded is that rounded as `rounding` says "
    "(the instalment's interestDue); closingBalance = openingBalance − principal."
)
class InstallmentCalculation:
    opening_balance: Decimal = strawberry.field(
        description="Principal owed before this instalment: the amount lent for the first, the "
        "previous instalment's closingBalance after."
    )
    period_start: date = strawberry.field(
        description="Where its period starts: the previous due date, or disbursement."
    )
    period_end: date = strawberry.field(description="Where it ends: this instalment's due date.")
    annual_rate: Decimal = strawberry.field(
        description='The loan\'s nominal annual rate in percent, such as "12.5".'
    )
    day_count_convention: DayCount = strawberry.field(description="How the days are counted.")
    days: int = strawberry.field(
        description="Days of interest in the period: 30/360 counts every period as its nominal "
        "days (30 a month, 14 a fortnight, 7 a week); ACTUAL_365 the calendar days from "
        "periodStart to periodEnd."
    )
    days_in_year: int = strawberry.field(
        description="Days in the year the rate is divided by: 360 for monthly 30/360 (364 for "
        "fortnightly and weekly: 26 × 14 and 52 × 7), 365 for ACTUAL_365."
    )
    interest_exact: Decimal = strawberry.field(
        description="The interest before rounding, cut to 10 decimal places (computed to 50 "
        "significant digits)."
    )
    interest_rounded: Decimal = strawberry.field(
        description="The interest charged: interestExact rounded; the instalment's interestDue."
    )
    principal: Decimal = strawberry.field(
        description="Principal repaid by this instalment (its principalDue): for ANNUITY the "
        "level payment less the interest (not below 0), for EQUAL_PRINCIPAL the amount lent "
        "over the number of instalments, and for the last instalment whatever is left."
    )
    closing_balance: Decimal = strawberry.field(
        description="Principal owed after it (the instalment's balanceAfter)."
    )
    rounding: Rounding = strawberry.field(description="How interestRounded was rounded.")

    @classmethod
    def of(
        cls, found: Calculation, rate: Decimal, day_count: DayCount, currency: str
    ) -> InstallmentCalculation:
        """The GraphQL view of one instalment's calculation (lending.schedule)."""
        return cls(
            opening_balance=as_written(found.opening_balance, currency),
            period_start=found.period_start,
            period_end=found.period_end,
            annual_rate=rate,
            day_count_convention=day_count,
            days=found.interest.days,
            days_in_year=found.interest.days_in_year,
            interest_exact=shown(found.interest.exact),
            interest_rounded=as_written(found.interest.rounded, currency),
            principal=as_written(found.principal, currency),
            closing_balance=as_written(found.closing_balance, currency),
            rounding=Rounding.of(currency),
        )


async def installment_calculations(info: Info, loan_id: int) -> dict[int, InstallmentCalculation]:
    """Every instalment's calculation of a loan, by number: computed once per request."""
    loaders = info.context.loaders
    if loan_id not in loaders.calculations:
        loan = await loaders.one("loans").load(loan_id)
        rows = await loaders.installments_by_loan.load(loan_id)
        assert loan is not None
        assert loan.disbursed_on is not None
        currency, rate = loan.currency, loan.annual_interest_rate
        day_count = DayCount(loan.day_count)
        found = calculations(
            rows,
            loan.principal,
            rate,
            RepaymentFrequency(loan.frequency),
            day_count,
            currency,
            loan.disbursed_on,
        )
        loaders.calculations[loan_id] = {
            c.number: InstallmentCalculation.of(c, rate, day_count, currency) for c in found
        }
    return loaders.calculations[loan_id]


@strawberry.type(
    description="How a settlement quote's interest was computed: the interest of the current "
    "period (the instalment falling due next) accrues in proportion to the days elapsed. "
    "accruedExact = scheduledInterest × accruedFraction; accruedInterest is accruedRounded "
    "less interestAlreadyPaid (not below 0); the rest of the later interest is the rebate."
)
class SettlementCalculation:
    installment_number: int = strawberry.field(
        description="The instalment whose period the date falls in."
    )
    period_start: date = strawberry.field(
        description="Its period's start: the previous due date, or disbursement."
    )
    period_end: date = strawberry.field(description="Its due date.")
    day_count_convention: DayCount = strawberry.field(description="How the days are counted.")
    period_days: int = strawberry.field(description="Days in the period, by the day count.")
    elapsed_days: int = strawberry.field(
        description="Days from periodStart to the quote's date, by the day count."
    )
    accrued_fraction: Decimal = strawberry.field(
        description="elapsedDays / periodDays, cut to 10 decimal places."
    )
    scheduled_interest: Decimal = strawberry.field(
        description="The instalment's scheduled interest (its interestDue)."
    )
    accrued_exact: Decimal = strawberry.field(
        description="scheduledInterest × elapsedDays / periodDays before rounding, cut to 10 "
        "decimal places (computed to 50 significant digits)."
    )
    accrued_rounded: Decimal = strawberry.field(description="accruedExact, rounded once.")
    interest_already_paid: Decimal = strawberry.field(
        description="Interest of that instalment paid before the date."
    )
    accrued_interest: Decimal = strawberry.field(
        description="What the quote charges of the period's interest (the quote's accruedInterest)."
    )
    rebate: Decimal = strawberry.field(
        description="Interest waived: scheduled interest of the later instalments, and of this "
        "one beyond what accrued (the quote's rebate)."
    )
    rounding: Rounding = strawberry.field(description="How accruedRounded was rounded.")

    @classmethod
    def of(
        cls,
        accrual: Accrual,
        day_count: DayCount,
        accrued_interest: Decimal,
        rebate: Decimal,
        currency: str,
    ) -> SettlementCalculation:
        """The GraphQL view of a quote's accrual (lending.settlement)."""
        return cls(
            installment_number=accrual.installment_number,
            period_start=accrual.period_start,
            period_end=accrual.period_end,
            day_count_convention=day_count,
            period_days=accrual.period_days,
            elapsed_days=accrual.elapsed_days,
            accrued_fraction=shown(accrual.fraction),
            scheduled_interest=as_written(accrual.scheduled_interest, currency),
            accrued_exact=shown(accrual.exact),
            accrued_rounded=as_written(accrual.rounded, currency),
            interest_already_paid=as_written(accrual.already_paid, currency),
            accrued_interest=accrued_interest,
            rebate=rebate,
            rounding=Rounding.of(currency),
        )
