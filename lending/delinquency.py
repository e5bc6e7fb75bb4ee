"""Instalment status and loan delinquency as of a date."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from lending.allocation import InstallmentBalance
from lending.money import round_money


class InstallmentStatus(enum.Enum):
    """Where one instalment stands on a given date."""

    UPCOMING = "UPCOMING"
    DUE = "DUE"
    PARTIALLY_PAID = "PARTIALLY_PAID"
    PAID = "PAID"
    OVERDUE = "OVERDUE"


class DelinquencyBucket(enum.Enum):
    """Days-past-due band of a loan."""

    CURRENT = "CURRENT"
    DPD_1_30 = "DPD_1_30"
    DPD_31_60 = "DPD_31_60"
    DPD_61_90 = "DPD_61_90"
    DPD_91_PLUS = "DPD_91_PLUS"


@dataclass(frozen=True)
class Delinquency:
    """How far behind a loan is on a given date."""

    days_past_due: int
    bucket: DelinquencyBucket
    overdue_amount: Decimal
    oldest_overdue_installment: int | None


class StatusTest(enum.Enum):
    """A fact about an instalment's balance on a date that its status depends on."""

    NOTHING_OUTSTANDING = "NOTHING_OUTSTANDING"  # outstanding <= 0
    DUE_BEFORE = "DUE_BEFORE"  # due date before the date
    DUE_ON = "DUE_ON"  # due date on the date
    SOMETHING_PAID = "SOMETHING_PAID"  # paid > 0


# How an instalment's status is decided: the first test that holds wins, else UPCOMING.
# On the due date the remainder is owed that day, which matters more than a part payment, so
# DUE comes before PARTIALLY_PAID. The read compiler renders this table into SQL.
STATUS_RULES: tuple[tuple[StatusTest, InstallmentStatus], ...] = (
    (StatusTest.NOTHING_OUTSTANDING, InstallmentStatus.PAID),
    (StatusTest.DUE_BEFORE, InstallmentStatus.OVERDUE),
    (StatusTest.DUE_ON, InstallmentStatus.DUE),
    (StatusTest.SOMETHING_PAID, InstallmentStatus.PARTIALLY_PAID),
)
OTHERWISE = InstallmentStatus.UPCOMING

# Days-past-due band of each bucket, as (low, high) with high None meaning unbounded.
BUCKET_BOUNDS: dict[DelinquencyBucket, tuple[int, int | None]] = {
    DelinquencyBucket.CURRENT: (0, 0),
    DelinquencyBucket.DPD_1_30: (1, 30),
    DelinquencyBucket.DPD_31_60: (31, 60),
    DelinquencyBucket.DPD_61_90: (61, 90),
    DelinquencyBucket.DPD_91_PLUS: (91, None),
}


def _holds(test: StatusTest, balance: InstallmentBalance, as_of: date) -> bool:
    if test is StatusTest.NOTHING_OUTSTANDING:
        return balance.outstanding <= 0
    if test is StatusTest.DUE_BEFORE:
        return balance.due_date < as_of
    if test is StatusTest.DUE_ON:
        return balance.due_date == as_of
    return balance.paid > 0


def installment_status(balance: InstallmentBalance, as_of: date) -> InstallmentStatus:
    """Status of an instalment on ``as_of`` (see STATUS_RULES)."""
    for test, status in STATUS_RULES:
        if _holds(test, balance, as_of):
            return status
    return OTHERWISE


def bucket_for(days_past_due: int) -> DelinquencyBucket:
    """Delinquency bucket of a days-past-due count."""
    if days_past_due < 0:
        raise ValueError("days_past_due must not be negative")
    for bucket, (low, high) in BUCKET_BOUNDS.items():
        if low <= days_past_due and (high is None or days_past_due <= high):
            return bucket
    raise AssertionError("BUCKET_BOUNDS covers every count")  # pragma: no cover


def delinquency(balances: Iterable[InstallmentBalance], as_of: date, currency: str) -> Delinquency:
    """Days past due, bucket and overdue amount of a loan's instalments on ``as_of``."""
    overdue = [
        balance
        for balance in balances
        if installment_status(balance, as_of) is InstallmentStatus.OVERDUE
    ]
    amount = round_money(sum((balance.outstanding for balance in overdue), Decimal(0)), currency)
    if not overdue:
        return Delinquency(0, DelinquencyBucket.CURRENT, amount, None)
    oldest = min(overdue, key=lambda balance: (balance.due_date, balance.number))
    days = (as_of - oldest.due_date).days
    return Delinquency(days, bucket_for(days), amount, oldest.number)
