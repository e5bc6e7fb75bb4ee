"""How a loan is repaid: amortization method, repayment frequency and day-count convention."""

from __future__ import annotations

import enum


class AmortizationMethod(enum.Enum):
    """How each instalment splits into principal and interest."""

    ANNUITY = "ANNUITY"
    EQUAL_PRINCIPAL = "EQUAL_PRINCIPAL"


class RepaymentFrequency(enum.Enum):
    """How often instalments fall due."""

    MONTHLY = "MONTHLY"
    BIWEEKLY = "BIWEEKLY"
    WEEKLY = "WEEKLY"


class DayCount(enum.Enum):
    """How a period's interest is counted."""

    THIRTY_360 = "THIRTY_360"
    ACTUAL_365 = "ACTUAL_365"
