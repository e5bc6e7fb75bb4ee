"""Early settlement: worked examples by hand, and properties over random loans and dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lending.allocation import InstallmentDue, PaymentIn, allocate
from lending.money import quantum
from lending.repayment import left_to_pay, schedule_terms
from lending.schedule import build_schedule
from lending.settlement import (
    AccrualTerms,
    days_30_360,
    settlement_parts,
    settlement_quote,
)
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

STAMP = datetime(2026, 1, 1, tzinfo=UTC)


def _loan(day_count: DayCount, **overrides: object):
    values: dict[str, object] = {
        "principal": Decimal("10000.00"),
        "annual_rate": Decimal("12"),
        "term_months": 12,
        "method": AmortizationMethod.ANNUITY,
        "frequency": RepaymentFrequency.MONTHLY,
        "day_count": day_count,
        "currency": "USD",
        "disbursed_on": date(2026, 1, 1),
        "first_due_date": None,
    } | overrides
    schedule = build_schedule(schedule_terms(**values))  # type: ignore[arg-type]
    dues = [
        InstallmentDue(i.number, i.due_date, i.principal, i.interest) for i in schedule.installments
    ]
    return schedule, dues


def _settle(dues, payments, day, terms):
    return allocate(
        dues,
        payments,
        settle=lambda balances, on: settlement_parts(balances, on, terms),
    )


def _paid_on_time(schedule, count):
    return [
        PaymentIn(n, i.total, i.due_date, STAMP)
        for n, i in enumerate(schedule.installments[:count])
    ]


def test_a_12_month_annuity_at_12_percent_30_360_settled_on_day_15_of_month_4():
    # 10,000.00 at 12 % (1 % a month), 12 months, disbursed 2026-01-01, due on the 1st.
    # Instalment: 10,000 × 0.01 / (1 − 1.01^−12) = 888.4879 → 888.49.
    #   1 (Feb 1): interest 10,000.00 × 1 % = 100.00, principal 788.49, balance 9,211.51
    #   2 (Mar 1): interest 92.1151 → 92.12, principal 796.37, balance 8,415.14
    #   3 (Apr 1): interest 84.1514 → 84.15, principal 804.34, balance 7,610.80
    #   4 (May 1): interest 76.1080 → 76.11
    # Paid 1 to 3 on their due dates; settled on 2026-04-15:
    #   overdue: nothing due by Apr 15 is unpaid → 0.00
    #   principal: the balance after instalment 3 → 7,610.80
    #   accrued: 76.11 × 14/30 (30/360: Apr 1 → Apr 15 is 14 days of a 30-day period)
    #          = 35.518 → 35.52
    #   amount: 7,610.80 + 35.52 = 7,646.32
    schedule, dues = _loan(DayCount.THIRTY_360)
    assert [i.interest for i in schedule.installments[:4]] == [
        Decimal("100.00"),
        Decimal("92.12"),
        Decimal("84.15"),
        Decimal("76.11"),
    ]
    terms = AccrualTerms(date(2026, 1, 1), DayCount.THIRTY_360, "USD")
    balances = allocate(dues, _paid_on_time(schedule, 3)).balances
    quote = settlement_quote(balances, date(2026, 4, 15), terms)
    assert quote.overdue == Decimal("0.00")
    assert quote.principal == Decimal("7610.80")
    assert quote.accrued_interest == Decimal("35.52")
    assert quote.amount == Decimal("7646.32")
    # the rebate is the scheduled interest from instalment 4 on, less what accrued
    future = sum(i.interest for i in schedule.installments[3:])
    assert quote.rebate == future - Decimal("35.52")


def test_the_same_loan_on_actual_365_settled_on_the_same_day():
    # Interest counts the actual days at 12 % / 365:
    #   1 (Jan 1 → Feb 1, 31 days): 10,000.00 × 0.12 × 31/365 = 101.9178 → 101.92,
    #     principal 888.49 − 101.92 = 786.57, balance 9,213.43
    #   2 (28 days): 9,213.43 × 0.12 × 28/365 = 84.8140 → 84.81, principal 803.68,
    #     balance 8,409.75
    #   3 (31 days): 8,409.75 × 0.12 × 31/365 = 85.7103 → 85.71, principal 802.78,
    #     balance 7,606.97
    #   4 (Apr 1 → May 1, 30 days): 7,606.97 × 0.12 × 30/365 = 75.0276 → 75.03
    # Settled on Apr 15: accrued 75.03 × 14/30 = 35.014 → 35.01;
    #   amount 7,606.97 + 35.01 = 7,641.98
    schedule, dues = _loan(DayCount.ACTUAL_365)
    assert [i.interest for i in schedule.installments[:4]] == [
        Decimal("101.92"),
        Decimal("84.81"),
        Decimal("85.71"),
        Decimal("75.03"),
    ]
    terms = AccrualTerms(date(2026, 1, 1), DayCount.ACTUAL_365, "USD")
    balances = allocate(dues, _paid_on_time(schedule, 3)).balances
    quote = settlement_quote(balances, date(2026, 4, 15), terms)
    assert quote.principal == Decimal("7606.97")
    assert quote.accrued_interest == Decimal("35.01")
    assert quote.amount == Decimal("7641.98")


def test_what_is_overdue_is_owed_in_full():
    # Nothing paid: on Apr 15 instalments 1 to 3 are overdue, each in full.
    _, dues = _loan(DayCount.THIRTY_360)
    terms = AccrualTerms(date(2026, 1, 1), DayCount.THIRTY_360, "USD")
    quote = settlement_quote(allocate(dues, []).balances, date(2026, 4, 15), terms)
    assert quote.overdue == 3 * Decimal("888.49")
    assert quote.principal == Decimal("7610.80")
    assert quote.accrued_interest == Decimal("35.52")


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (date(2026, 1, 31), date(2026, 2, 28), 28),
        (date(2026, 1, 30), date(2026, 3, 31), 60),
        (date(2026, 1, 15), date(2026, 2, 15), 30),
        (date(2026, 4, 1), date(2026, 4, 15), 14),
        (date(2025, 12, 31), date(2026, 12, 31), 360),
    ],
)
def test_30_360_counts_each_month_as_30_days(start, end, days):
    assert days_30_360(start, end) == days


@st.composite
def loans_and_days(draw: st.DrawFn):
    currency = draw(st.sampled_from(["USD", "KES", "JPY"]))
    units = draw(st.integers(min_value=1000, max_value=10**8))
    term = draw(st.integers(1, 60))
    day_count = draw(st.sampled_from(DayCount))
    disbursed = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)))
    schedule, dues = _loan(
        day_count,
        principal=units * quantum(currency),
        annual_rate=Decimal(draw(st.integers(0, 360_000))) / 10_000,
        term_months=term,
        method=draw(st.sampled_from(AmortizationMethod)),
        frequency=draw(st.sampled_from(RepaymentFrequency)),
        currency=currency,
        disbursed_on=disbursed,
    )
    # some instalments paid on time, perhaps one more partly
    paid = draw(st.integers(0, len(dues) - 1))
    payments = _paid_on_time(schedule, paid)
    if draw(st.booleans()) and paid < len(dues):
        due = schedule.installments[paid]
        part = (due.total * Decimal(draw(st.integers(1, 99))) / 100).quantize(quantum(currency))
        if part > 0:
            payments.append(PaymentIn("part", part, due.due_date - timedelta(days=1), STAMP))
    last = max((p.received_on for p in payments), default=disbursed)
    span = (schedule.maturity_date - last).days
    day = last + timedelta(days=draw(st.integers(0, max(span, 0))))
    terms = AccrualTerms(disbursed, day_count, currency)
    return schedule, dues, payments, day, terms


@settings(max_examples=300, deadline=None, database=None)
@given(loans_and_days())
def test_settlement_properties(case):
    _, dues, payments, day, terms = case
    before = allocate(dues, payments)
    quote = settlement_quote(before.balances, day, terms)
    # the quote adds up, and nothing is rebated that was not scheduled
    assert quote.amount == quote.overdue + quote.principal + quote.accrued_interest
    assert quote.rebate >= 0
    assert quote.accrued_interest >= 0
    assert quote.amount + quote.rebate == left_to_pay(before.balances)
    # settling pays everything off, exactly
    settling = PaymentIn("settle", quote.amount, day, STAMP + timedelta(days=1), settles=True)
    settled = _settle(dues, [*payments, settling], day, terms)
    assert settled.unallocated == 0
    assert all(b.outstanding == 0 for b in settled.balances)
    assert sum(a.interest_waived for a in settled.allocations) == quote.rebate
    # and reversing it (replaying without it) restores every instalment and allocation
    assert _settle(dues, payments, day, terms) == before


@settings(max_examples=60, deadline=None, database=None)
@given(loans_and_days())
def test_on_a_due_date_with_nothing_overdue_the_quote_is_the_payoff_less_future_interest(case):
    schedule, dues, _, _, terms = case
    for n, due in enumerate(schedule.installments):
        # everything due before this due date paid on time, nothing else
        payments = _paid_on_time(schedule, n)
        balances = allocate(dues, payments).balances
        quote = settlement_quote(balances, due.due_date, terms)
        future_interest = sum(
            (b.interest_due - b.interest_paid for b in balances if b.due_date > due.due_date),
            Decimal(0),
        )
        assert quote.accrued_interest == 0
        assert quote.amount == left_to_pay(balances) - future_interest
