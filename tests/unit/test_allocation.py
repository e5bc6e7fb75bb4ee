"""Horizontal payment allocation: oldest instalment first, interest before principal."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import permutations

import pytest

from lending.allocation import (
    Allocation,
    InstallmentBalance,
    InstallmentDue,
    PaymentIn,
    allocate,
    outstanding_total,
    settled_on,
)


def dues() -> list[InstallmentDue]:
    return [
        InstallmentDue(1, date(2024, 2, 15), Decimal("16.34"), Decimal("0.79")),
        InstallmentDue(2, date(2024, 3, 15), Decimal("16.47"), Decimal("0.66")),
        InstallmentDue(3, date(2024, 4, 15), Decimal("16.60"), Decimal("0.53")),
    ]


def pay(
    key: object, amount: str, received_on: date, recorded_at: datetime | None = None
) -> PaymentIn:
    stamp = recorded_at or datetime.combine(received_on, datetime.min.time(), UTC)
    return PaymentIn(key, Decimal(amount), received_on, stamp)


def test_no_payments_leaves_everything_outstanding() -> None:
    result = allocate(dues(), [])
    assert result.allocations == ()
    assert result.unallocated == 0
    assert [b.outstanding for b in result.balances] == [Decimal("17.13")] * 3
    assert all(b.paid_on is None for b in result.balances)
    assert outstanding_total(dues(), []) == Decimal("51.39")


def test_exact_instalment_payment() -> None:
    result = allocate(dues(), [pay("p1", "17.13", date(2024, 2, 14))])
    assert result.allocations == (Allocation("p1", 1, Decimal("16.34"), Decimal("0.79")),)
    first = result.balances[0]
    assert first.outstanding == 0
    assert first.total_due == Decimal("17.13")
    assert first.paid_on == date(2024, 2, 14)
    assert result.balances[1].paid_on is None


def test_interest_is_paid_before_principal() -> None:
    result = allocate(dues(), [pay("p1", "1.00", date(2024, 2, 15))])
    assert result.allocations == (Allocation("p1", 1, Decimal("0.21"), Decimal("0.79")),)
    first = result.balances[0]
    assert (first.interest_paid, first.principal_paid) == (Decimal("0.79"), Decimal("0.21"))
    assert first.outstanding == Decimal("16.13")
    assert first.paid_on is None


def test_partial_interest_only() -> None:
    result = allocate(dues(), [pay("p1", "0.50", date(2024, 2, 15))])
    assert result.allocations == (Allocation("p1", 1, Decimal("0"), Decimal("0.50")),)
    assert result.balances[0].outstanding == Decimal("16.63")


def test_prepayment_spills_into_later_instalments() -> None:
    result = allocate(dues(), [pay("p1", "20.00", date(2024, 2, 10))])
    assert result.allocations == (
        Allocation("p1", 1, Decimal("16.34"), Decimal("0.79")),
        Allocation("p1", 2, Decimal("2.21"), Decimal("0.66")),
    )
    assert result.balances[1].outstanding == Decimal("14.26")
    assert result.balances[2].outstanding == Decimal("17.13")
    assert outstanding_total(dues(), [pay("p1", "20.00", date(2024, 2, 10))]) == Decimal("31.39")


def test_paid_on_is_the_date_of_the_completing_payment() -> None:
    payments = [pay("a", "10.00", date(2024, 2, 1)), pay("b", "10.00", date(2024, 2, 20))]
    result = allocate(dues(), payments)
    assert result.balances[0].paid_on == date(2024, 2, 20)
    assert result.allocations == (
        Allocation("a", 1, Decimal("9.21"), Decimal("0.79")),
        Allocation("b", 1, Decimal("7.13"), Decimal("0")),
        Allocation("b", 2, Decimal("2.21"), Decimal("0.66")),
    )


def test_payments_are_applied_by_received_on_then_recorded_at_then_key() -> None:
    day = date(2024, 2, 1)
    early = datetime(2024, 2, 1, 9, tzinfo=UTC)
    late = datetime(2024, 2, 1, 10, tzinfo=UTC)
    payments = [
        pay("z", "1.00", day, early),
        pay("late", "1.00", day, late),
        pay("a", "1.00", day, early),
        pay("first", "1.00", date(2024, 1, 31), late),
    ]
    keys = [a.payment_key for a in allocate(dues(), payments).allocations]
    assert keys == ["first", "a", "z", "late"]
    for ordering in permutations(payments):
        assert allocate(dues(), ordering) == allocate(dues(), payments)


def test_ties_between_numeric_keys_compare_as_numbers() -> None:
    # Payment 10 was recorded after payment 9 in the same instant; "10" < "9" as text.
    day = date(2024, 2, 1)
    stamp = datetime(2024, 2, 1, 9, tzinfo=UTC)
    payments = [pay(10, "1.00", day, stamp), pay(9, "1.00", day, stamp)]
    keys = [a.payment_key for a in allocate(dues(), payments).allocations]
    assert keys == [9, 10]


def test_full_payoff_and_overpayment() -> None:
    total = outstanding_total(dues(), [])
    result = allocate(dues(), [pay("p", str(total), date(2024, 2, 1))])
    assert all(b.outstanding == 0 for b in result.balances)
    assert all(b.paid_on == date(2024, 2, 1) for b in result.balances)
    assert result.unallocated == 0
    over = allocate(dues(), [pay("p", "60.00", date(2024, 2, 1))])
    assert over.unallocated == Decimal("8.61")
    assert outstanding_total(dues(), [pay("p", "60.00", date(2024, 2, 1))]) == 0


def test_zero_amount_payment_emits_no_rows() -> None:
    result = allocate(dues(), [pay("p", "0.00", date(2024, 2, 1))])
    assert result.allocations == ()


def test_instalments_are_filled_by_due_date_whatever_the_input_order() -> None:
    reversed_dues = list(reversed(dues()))
    result = allocate(reversed_dues, [pay("p", "17.13", date(2024, 2, 1))])
    assert result.allocations == (Allocation("p", 1, Decimal("16.34"), Decimal("0.79")),)
    # Balances come back in the order the instalments were given.
    assert [b.number for b in result.balances] == [3, 2, 1]


def test_zero_instalment_is_paid_without_a_payment() -> None:
    items = [
        InstallmentDue(1, date(2024, 2, 1), Decimal("5"), Decimal("0")),
        InstallmentDue(2, date(2024, 3, 1), Decimal("0"), Decimal("0")),
    ]
    result = allocate(items, [pay("p", "5", date(2024, 2, 1))])
    assert result.allocations == (Allocation("p", 1, Decimal("5"), Decimal("0")),)
    assert result.balances[1] == InstallmentBalance(
        2, date(2024, 3, 1), Decimal("0"), Decimal("0"), Decimal("0"), Decimal("0"), None
    )


def test_jpy_amounts() -> None:
    items = [
        InstallmentDue(1, date(2024, 2, 1), Decimal("81440"), Decimal("4167")),
        InstallmentDue(2, date(2024, 3, 1), Decimal("81780"), Decimal("3827")),
    ]
    result = allocate(items, [pay(7, "90000", date(2024, 2, 1))])
    assert result.allocations == (
        Allocation(7, 1, Decimal("81440"), Decimal("4167")),
        Allocation(7, 2, Decimal("566"), Decimal("3827")),
    )
    assert sum(a.amount for a in result.allocations) == Decimal("90000")


def test_negative_payment_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        allocate(dues(), [pay("p", "-1.00", date(2024, 2, 1))])


def test_duplicate_instalment_numbers_are_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        allocate(dues() + dues(), [])


def test_negative_instalment_amount_is_rejected() -> None:
    bad = [InstallmentDue(1, date(2024, 2, 1), Decimal("-1"), Decimal("0"))]
    with pytest.raises(ValueError, match="negative"):
        allocate(bad, [])


@pytest.mark.parametrize("total", ["0.00", "10.00"])
def test_an_instalment_asking_for_nothing_is_settled_from_its_due_date(total: str) -> None:
    due = date(2026, 3, 1)
    owed = Decimal(total)
    assert settled_on(due, owed, owed, None) == (due if owed == 0 else None)
    assert settled_on(due, owed, Decimal(0), date(2026, 3, 5)) == (
        due if owed == 0 else date(2026, 3, 5)
    )
