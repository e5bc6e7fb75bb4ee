"""Instalment status and delinquency buckets as of a date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from lending.allocation import InstallmentBalance, InstallmentDue, PaymentIn, allocate
from lending.delinquency import (
    Delinquency,
    DelinquencyBucket,
    InstallmentStatus,
    bucket_for,
    delinquency,
    installment_status,
)

DUE_DATE = date(2024, 3, 15)


def balance(
    principal_paid: str = "0.00",
    interest_paid: str = "0.00",
    due_date: date = DUE_DATE,
    number: int = 1,
) -> InstallmentBalance:
    return InstallmentBalance(
        number=number,
        due_date=due_date,
        principal_due=Decimal("90.00"),
        interest_due=Decimal("10.00"),
        principal_paid=Decimal(principal_paid),
        interest_paid=Decimal(interest_paid),
        paid_on=None,
    )


def test_enum_values_equal_names() -> None:
    for enum_type in (InstallmentStatus, DelinquencyBucket):
        assert all(member.value == member.name for member in enum_type)


@pytest.mark.parametrize(
    ("paid", "as_of", "expected"),
    [
        (("0.00", "0.00"), DUE_DATE - timedelta(days=1), InstallmentStatus.UPCOMING),
        (("0.00", "0.00"), DUE_DATE, InstallmentStatus.DUE),
        (("0.00", "0.00"), DUE_DATE + timedelta(days=1), InstallmentStatus.OVERDUE),
        (("0.00", "5.00"), DUE_DATE - timedelta(days=10), InstallmentStatus.PARTIALLY_PAID),
        (("40.00", "10.00"), DUE_DATE - timedelta(days=1), InstallmentStatus.PARTIALLY_PAID),
        # On the due date DUE takes precedence over PARTIALLY_PAID.
        (("40.00", "10.00"), DUE_DATE, InstallmentStatus.DUE),
        (("40.00", "10.00"), DUE_DATE + timedelta(days=1), InstallmentStatus.OVERDUE),
        (("89.99", "10.00"), DUE_DATE + timedelta(days=400), InstallmentStatus.OVERDUE),
        (("90.00", "10.00"), DUE_DATE - timedelta(days=30), InstallmentStatus.PAID),
        (("90.00", "10.00"), DUE_DATE, InstallmentStatus.PAID),
        (("90.00", "10.00"), DUE_DATE + timedelta(days=30), InstallmentStatus.PAID),
    ],
)
def test_installment_status(
    paid: tuple[str, str], as_of: date, expected: InstallmentStatus
) -> None:
    assert installment_status(balance(*paid), as_of) is expected


def test_zero_instalment_is_paid() -> None:
    empty = InstallmentBalance(
        1, DUE_DATE, Decimal("0"), Decimal("0"), Decimal("0"), Decimal("0"), None
    )
    assert installment_status(empty, DUE_DATE + timedelta(days=5)) is InstallmentStatus.PAID


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (0, DelinquencyBucket.CURRENT),
        (1, DelinquencyBucket.DPD_1_30),
        (30, DelinquencyBucket.DPD_1_30),
        (31, DelinquencyBucket.DPD_31_60),
        (60, DelinquencyBucket.DPD_31_60),
        (61, DelinquencyBucket.DPD_61_90),
        (90, DelinquencyBucket.DPD_61_90),
        (91, DelinquencyBucket.DPD_91_PLUS),
        (5000, DelinquencyBucket.DPD_91_PLUS),
    ],
)
def test_bucket_boundaries(days: int, expected: DelinquencyBucket) -> None:
    assert bucket_for(days) is expected


def test_negative_days_are_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        bucket_for(-1)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (1, DelinquencyBucket.DPD_1_30),
        (30, DelinquencyBucket.DPD_1_30),
        (31, DelinquencyBucket.DPD_31_60),
        (60, DelinquencyBucket.DPD_31_60),
        (61, DelinquencyBucket.DPD_61_90),
        (90, DelinquencyBucket.DPD_61_90),
        (91, DelinquencyBucket.DPD_91_PLUS),
    ],
)
def test_delinquency_days_past_due_drive_the_bucket(days: int, expected: DelinquencyBucket) -> None:
    as_of = DUE_DATE + timedelta(days=days)
    result = delinquency([balance()], as_of, "USD")
    assert result == Delinquency(days, expected, Decimal("100.00"), 1)


def test_no_overdue_instalment_is_current() -> None:
    result = delinquency([balance()], DUE_DATE, "USD")
    assert result == Delinquency(0, DelinquencyBucket.CURRENT, Decimal("0.00"), None)
    assert str(result.overdue_amount) == "0.00"
    assert delinquency([], DUE_DATE, "JPY").overdue_amount == Decimal("0")


def test_oldest_overdue_instalment_sets_days_past_due() -> None:
    balances = [
        balance("90.00", "10.00", date(2024, 1, 15), 1),
        balance("20.00", "10.00", date(2024, 2, 15), 2),
        balance("0.00", "0.00", date(2024, 3, 15), 3),
        balance("0.00", "0.00", date(2024, 4, 15), 4),
    ]
    result = delinquency(balances, date(2024, 3, 20), "USD")
    assert result.oldest_overdue_installment == 2
    assert result.days_past_due == 34
    assert result.bucket is DelinquencyBucket.DPD_31_60
    assert result.overdue_amount == Decimal("170.00")


def test_partial_payments_through_allocation() -> None:
    dues = [
        InstallmentDue(1, date(2024, 2, 15), Decimal("16.34"), Decimal("0.79")),
        InstallmentDue(2, date(2024, 3, 15), Decimal("16.47"), Decimal("0.66")),
        InstallmentDue(3, date(2024, 4, 15), Decimal("16.60"), Decimal("0.53")),
    ]
    stamp = datetime(2024, 2, 10, tzinfo=UTC)
    payments = [PaymentIn("p", Decimal("20.00"), date(2024, 2, 10), stamp)]
    balances = allocate(dues, payments).balances
    as_of = date(2024, 3, 1)
    statuses = [installment_status(b, as_of) for b in balances]
    assert statuses == [
        InstallmentStatus.PAID,
        InstallmentStatus.PARTIALLY_PAID,
        InstallmentStatus.UPCOMING,
    ]
    assert installment_status(balances[1], date(2024, 3, 15)) is InstallmentStatus.DUE
    late = delinquency(balances, date(2024, 3, 25), "USD")
    assert late == Delinquency(10, DelinquencyBucket.DPD_1_30, Decimal("14.26"), 2)
    assert delinquency(balances, as_of, "USD").bucket is DelinquencyBucket.CURRENT
