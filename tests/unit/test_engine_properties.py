"""Property tests of the schedule and allocation rules over random loans and payments."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from lending.allocation import InstallmentDue, PaymentIn, allocate, outstanding_total
from lending.money import minor_digits, round_money
from lending.schedule import (
    Schedule,
    ScheduleTerms,
    annuity_payment,
    build_schedule,
    due_dates,
    periodic_rate,
)
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

CURRENCIES = ["USD", "KES", "JPY", "KRW"]


@st.composite
def loan_terms(draw: st.DrawFn, max_installments: int = 360) -> ScheduleTerms:
    currency = draw(st.sampled_from(CURRENCIES))
    digits = minor_digits(currency)
    minor_units = draw(st.integers(10**digits, 10_000_000 * 10**digits))
    rate = Decimal(draw(st.integers(0, 360_000))).scaleb(-4)
    disbursed_on = draw(st.dates(date(2000, 1, 1), date(2040, 12, 31)))
    offset = draw(st.none() | st.integers(1, 120))
    first_due = None if offset is None else disbursed_on + timedelta(days=offset)
    return ScheduleTerms(
        principal=Decimal(minor_units).scaleb(-digits),
        annual_rate=rate,
        installments=draw(st.integers(1, max_installments)),
        method=draw(st.sampled_from(AmortizationMethod)),
        frequency=draw(st.sampled_from(RepaymentFrequency)),
        day_count=draw(st.sampled_from(DayCount)),
        currency=currency,
        disbursed_on=disbursed_on,
        first_due_date=first_due,
    )


def is_quantized(value: Decimal, currency: str) -> bool:
    rounded = round_money(value, currency)
    return value == rounded and value.as_tuple().exponent == rounded.as_tuple().exponent


@settings(max_examples=1200, deadline=None, database=None)
@given(loan_terms())
def test_schedule_invariants(terms: ScheduleTerms) -> None:
    schedule = build_schedule(terms)
    rows = schedule.installments
    assert len(rows) == terms.installments
    assert [row.number for row in rows] == list(range(1, terms.installments + 1))
    assert sum(row.principal for row in rows) == terms.principal
    assert rows[-1].balance_after == 0
    balance = terms.principal
    previous = terms.disbursed_on
    for row in rows:
        assert row.principal >= 0
        assert row.interest >= 0
        assert row.due_date > previous
        assert row.total == row.principal + row.interest
        balance -= row.principal
        assert row.balance_after == balance
        for value in (row.principal, row.interest, row.total, row.balance_after):
            assert is_quantized(value, terms.currency)
        previous = row.due_date
    assert schedule.total_principal == terms.principal
    assert schedule.total_payable == schedule.total_principal + schedule.total_interest
    assert schedule.maturity_date == rows[-1].due_date


def level_amount(terms: ScheduleTerms) -> Decimal:
    if terms.method is AmortizationMethod.ANNUITY:
        rate = periodic_rate(terms.annual_rate, terms.frequency)
        return annuity_payment(terms.principal, rate, terms.installments, terms.currency)
    return round_money(terms.principal / terms.installments, terms.currency)


@settings(max_examples=900, deadline=None, database=None)
@given(loan_terms())
def test_level_amounts(terms: ScheduleTerms) -> None:
    schedule: Schedule = build_schedule(terms)
    level = level_amount(terms)
    balance = terms.principal
    for row in schedule.installments[:-1]:
        if terms.method is AmortizationMethod.EQUAL_PRINCIPAL:
            assert row.principal == min(level, balance)
        elif row.principal == balance and balance < level - row.interest:
            pass  # the rounded instalment would repay more than is left
        elif terms.day_count is DayCount.THIRTY_360:
            assert row.principal + row.interest == level
        else:
            # ACTUAL_365: the whole instalment is interest when a period's interest exceeds A.
            assert row.principal + row.interest == level or (
                row.principal == 0 and row.interest > level
            )
        balance -= row.principal
    assert schedule.installments[-1].principal == balance


@settings(max_examples=500, deadline=None, database=None)
@given(
    st.sampled_from(RepaymentFrequency),
    st.dates(date(2000, 1, 1), date(2040, 12, 31)),
    st.integers(1, 60),
    st.none() | st.integers(1, 120),
)
def test_due_dates(
    frequency: RepaymentFrequency, disbursed_on: date, count: int, offset: int | None
) -> None:
    first = None if offset is None else disbursed_on + timedelta(days=offset)
    dates = due_dates(frequency, disbursed_on, count, first)
    assert len(dates) == count
    assert all(a < b for a, b in pairwise(dates))
    if first is not None:
        assert dates[0] == first
    if frequency is not RepaymentFrequency.MONTHLY:
        step = 14 if frequency is RepaymentFrequency.BIWEEKLY else 7
        assert dates[0] == (first or disbursed_on + timedelta(days=step))
        assert all((b - a).days == step for a, b in pairwise(dates))
        return
    anchor = (first or disbursed_on).day
    base = first or disbursed_on
    for k, due in enumerate(dates, start=0 if first else 1):
        months = base.year * 12 + base.month - 1 + k
        assert (due.year, due.month) == (months // 12, months % 12 + 1)
        assert due.day == min(anchor, calendar.monthrange(due.year, due.month)[1])


@st.composite
def loan_with_payments(
    draw: st.DrawFn,
) -> tuple[list[InstallmentDue], list[PaymentIn], str]:
    terms = draw(loan_terms(max_installments=24))
    schedule = build_schedule(terms)
    dues = [
        InstallmentDue(row.number, row.due_date, row.principal, row.interest)
        for row in schedule.installments
    ]
    digits = minor_digits(terms.currency)
    total_minor = int(schedule.total_payable.scaleb(digits))
    count = draw(st.integers(0, 8))
    payments: list[PaymentIn] = []
    for index in range(count):
        amount = Decimal(draw(st.integers(1, max(1, total_minor // 2)))).scaleb(-digits)
        received = terms.disbursed_on + timedelta(days=draw(st.integers(0, 3)))
        recorded = datetime(2041, 1, 1, draw(st.integers(0, 2)), tzinfo=UTC)
        key: object = draw(st.sampled_from([index, f"p{index}"]))
        payments.append(PaymentIn(key, amount, received, recorded))
    return dues, payments, terms.currency


@settings(max_examples=700, deadline=None, database=None)
@given(loan_with_payments())
def test_allocation_invariants(
    case: tuple[list[InstallmentDue], list[PaymentIn], str],
) -> None:
    dues, payments, currency = case
    result = allocate(dues, payments)
    paid_in = sum((p.amount for p in payments), Decimal(0))
    allocated = sum((a.principal + a.interest for a in result.allocations), Decimal(0))
    total_due = sum((d.principal + d.interest for d in dues), Decimal(0))
    assert allocated + result.unallocated == paid_in
    assert result.unallocated == max(Decimal(0), paid_in - total_due)
    for payment in payments:
        rows = [a for a in result.allocations if a.payment_key == payment.key]
        assert sum((a.principal + a.interest for a in rows), Decimal(0)) <= payment.amount
    for due, balance in zip(dues, result.balances, strict=True):
        rows = [a for a in result.allocations if a.installment_number == due.number]
        assert balance.principal_paid == sum((a.principal for a in rows), Decimal(0))
        assert balance.interest_paid == sum((a.interest for a in rows), Decimal(0))
        assert 0 <= balance.principal_paid <= due.principal
        assert 0 <= balance.interest_paid <= due.interest
        if balance.principal_paid > 0:
            assert balance.interest_paid == due.interest
        nothing_due = due.principal + due.interest == 0
        assert (balance.outstanding == 0) == (balance.paid_on is not None or nothing_due)
    for a in result.allocations:
        assert a.principal + a.interest > 0
        assert is_quantized(a.principal, currency)
        assert is_quantized(a.interest, currency)
    # Horizontal: any instalment that received money has every earlier one fully paid.
    for index, balance in enumerate(result.balances):
        if balance.paid > 0:
            assert all(b.outstanding == 0 for b in result.balances[:index])


@settings(max_examples=500, deadline=None, database=None)
@given(loan_with_payments(), st.data())
def test_replay_in_any_order_gives_identical_allocations(
    case: tuple[list[InstallmentDue], list[PaymentIn], str], data: st.DataObject
) -> None:
    dues, payments, _ = case
    shuffled = data.draw(st.permutations(payments))
    assert allocate(dues, shuffled) == allocate(dues, payments)


@settings(max_examples=500, deadline=None, database=None)
@given(loan_with_payments())
def test_paying_the_outstanding_total_settles_the_loan(
    case: tuple[list[InstallmentDue], list[PaymentIn], str],
) -> None:
    dues, payments, _ = case
    total_due = sum((d.principal + d.interest for d in dues), Decimal(0))
    paid_in = sum((p.amount for p in payments), Decimal(0))
    payoff = outstanding_total(dues, payments)
    assert payoff == max(Decimal(0), total_due - paid_in)
    if payoff == 0:
        return
    last = max(payments, key=lambda p: p.received_on, default=None)
    when = last.received_on if last else dues[0].due_date
    final = PaymentIn("payoff", payoff, when, datetime(2042, 1, 1, tzinfo=UTC))
    settled = allocate(dues, [*payments, final])
    assert settled.unallocated == 0
    assert all(b.outstanding == 0 for b in settled.balances)
    assert outstanding_total(dues, [*payments, final]) == 0
