"""Portfolio rules without a database: a loan's state on a day, and PAR ratios rounded exactly."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from lending.portfolio import LoanFacts, ratio, state_on
from lending.states import LoanStatus

D = date(2026, 6, 30)


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [
        ("1200.00", "2300.00", "0.5217"),
        ("1", "3", "0.3333"),
        ("2", "3", "0.6667"),
        ("0.00125", "1", "0.0012"),  # exactly half: to the even digit
        ("0.00135", "1", "0.0014"),
        ("0.001250000000000000000000000000001", "1", "0.0013"),  # past 28 digits, still above
        ("0", "0", "0.0000"),
        ("5", "5", "1.0000"),
    ],
)
def test_a_ratio_is_rounded_half_to_even_exactly(part, whole, expected):
    found = ratio(Decimal(part), Decimal(whole))
    assert str(found) == expected


A, P, W, C = LoanStatus.ACTIVE, LoanStatus.PAID_OFF, LoanStatus.WRITTEN_OFF, LoanStatus.CANCELLED
OUT, JAN12 = Decimal("1000.00"), date(2026, 1, 12)


def facts(status: LoanStatus, disbursed: date | None, closed: date | None) -> LoanFacts:
    return LoanFacts("USD", OUT, status, date(2026, 1, 10), disbursed, closed)


@pytest.mark.parametrize(
    ("loan", "left", "day", "expected"),
    [
        (facts(A, JAN12, None), OUT, date(2026, 1, 9), None),
        (facts(A, JAN12, None), OUT, date(2026, 1, 11), LoanStatus.APPROVED),
        (facts(A, JAN12, None), Decimal("10.00"), D, LoanStatus.ACTIVE),
        (facts(P, JAN12, None), Decimal("0.00"), D, LoanStatus.PAID_OFF),
        # paid off now, but not yet on the day
        (facts(P, JAN12, None), Decimal("5.00"), D, LoanStatus.ACTIVE),
        (facts(W, JAN12, D), Decimal("900.00"), D, LoanStatus.WRITTEN_OFF),
        (facts(W, JAN12, D), Decimal("900.00"), date(2026, 6, 29), LoanStatus.ACTIVE),
        (facts(C, None, D), OUT, D, LoanStatus.CANCELLED),
        (facts(C, None, D), OUT, date(2026, 3, 1), LoanStatus.APPROVED),
    ],
)
def test_a_loans_state_on_a_day(loan, left, day, expected):
    assert state_on(loan, left, day) is expected
