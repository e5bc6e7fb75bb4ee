"""Servicing rules: instalment counts, balances as of a date, payment checks."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from lending.allocation import InstallmentDue
from lending.errors import DomainError, ErrorCode
from lending.repayment import (
    PaidPart,
    balances_as_of,
    check_not_overpaid,
    check_received_on,
    installment_count,
    left_to_pay,
)
from lending.terms import RepaymentFrequency as F

D = Decimal


@pytest.mark.parametrize(
    ("months", "frequency", "count"),
    [
        (12, F.MONTHLY, 12),
        (12, F.BIWEEKLY, 26),
        (12, F.WEEKLY, 52),
        (1, F.BIWEEKLY, 3),
        (6, F.WEEKLY, 26),
        (7, F.BIWEEKLY, 16),
    ],
)
def test_installment_count(months, frequency, count):
    assert installment_count(months, frequency) == count


DUES = [
    InstallmentDue(1, date(2026, 1, 31), D("90.00"), D("10.00")),
    InstallmentDue(2, date(2026, 2, 28), D("95.00"), D("5.00")),
]
PARTS = [
    PaidPart(1, D("90.00"), D("10.00"), date(2026, 2, 3)),
    PaidPart(2, D("20.00"), D("5.00"), date(2026, 2, 3)),
    PaidPart(2, D("75.00"), D("0.00"), date(2026, 3, 10)),
]


def test_balances_count_only_payments_received_by_the_date():
    early = balances_as_of(DUES, PARTS, date(2026, 3, 1))
    assert [b.outstanding for b in early] == [D("0.00"), D("75.00")]
    assert early[0].paid_on == date(2026, 2, 3)
    assert early[1].paid_on is None
    assert left_to_pay(early) == D("75.00")
    everything = balances_as_of(DUES, PARTS)
    assert left_to_pay(everything) == 0
    assert everything[1].paid_on == date(2026, 3, 10)


def test_payment_dates():
    check_received_on(date(2026, 1, 1), date(2026, 1, 1), date(2026, 1, 1))
    for received in (date(2025, 12, 31), date(2026, 1, 2)):
        with pytest.raises(DomainError) as raised:
            check_received_on(received, date(2026, 1, 1), date(2026, 1, 1))
        assert raised.value.code is ErrorCode.PAYMENT_DATE_INVALID


def test_overpayment_names_the_payoff():
    check_not_overpaid(D("75.00"), D("75.00"), "USD")
    with pytest.raises(DomainError, match=r"75\.00 USD") as raised:
        check_not_overpaid(D("75.01"), D("75.00"), "USD")
    assert raised.value.code is ErrorCode.OVERPAYMENT


def test_the_term_limit_in_the_database_is_the_rules():
    from db.models import Loan, LoanProduct
    from lending.repayment import MAX_TERM_MONTHS

    for model in (Loan, LoanProduct):
        [check] = [
            c for c in model.__table__.constraints if str(c.name).endswith("term_within_limit")
        ]
        assert str(check.sqltext).endswith(f"<= {MAX_TERM_MONTHS}")
