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


def installment_status(balance: InstallmentBalance, as_of: date) -> InstallmentStatus:
    """Status of an instalment on ``as_of``; on its due date DUE wins over PARTIALLY_PAID."""
    if balance.outstanding <= 0:
        return InstallmentStatus.PAID
    if balance.due_date < as_of:
        return InstallmentStatus.OVERDUE
    # On the due date the remainder is owed that day, which matters more than a part payment.
    if balance.due_date == as_of:
        return InstallmentStatus.DUE
    if balance.paid > 0:
        return InstallmentStatus.PARTIALLY_PAID
    return InstallmentStatus.UPCOMING


def bucket_for(days_past_due: int) -> DelinquencyBucket:
    """Delinquency bucket of a days-past-due count."""
    if days_past_due < 0:
        raise ValueError("days_past_due must not be negative")
    if days_past_due == 0:
        return DelinquencyBucket.CURRENT
    if days_past_due <= 30:
        return DelinquencyBucket.DPD_1_30
    if days_past_due <= 60:
        return DelinquencyBucket.DPD_31_60
    if days_past_due <= 90:
        return DelinquencyBucket.DPD_61_90
    return DelinquencyBucket.DPD_91_PLUS


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
