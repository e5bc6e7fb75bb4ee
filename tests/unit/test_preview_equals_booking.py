"""A preview and the loan booked from the same inputs give the same schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from db.models import Loan
from lending.money import quantum
from lending.repayment import (
    MAX_FIRST_DUE_DAYS,
    installment_count,
    loan_schedule,
    schedule_terms,
)
from lending.schedule import build_schedule
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency


@st.composite
def loans(draw: st.DrawFn) -> tuple[Loan, date, date | None]:
    currency = draw(st.sampled_from(["USD", "KES", "JPY"]))
    step = quantum(currency)
    units = draw(st.integers(min_value=100, max_value=10**9))
    loan = Loan(
        principal=units * step,
        currency=currency,
        annual_interest_rate=Decimal(draw(st.integers(0, 360_000))) / 10_000,
        term_months=draw(st.integers(1, 120)),
        amortization=draw(st.sampled_from(AmortizationMethod)),
        frequency=draw(st.sampled_from(RepaymentFrequency)),
        day_count=draw(st.sampled_from(DayCount)),
        approved_at=datetime(2020, 1, 1, tzinfo=UTC),
    )
    disbursed = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)))
    gap = draw(st.none() | st.integers(1, MAX_FIRST_DUE_DAYS))
    return loan, disbursed, None if gap is None else disbursed + timedelta(days=gap)


@settings(max_examples=500, deadline=None, database=None)
@given(loans())
def test_preview_and_booking_share_one_schedule(case):
    loan, disbursed_on, first_due = case
    preview = build_schedule(
        schedule_terms(
            principal=loan.principal,
            annual_rate=loan.annual_interest_rate,
            term_months=loan.term_months,
            method=loan.amortization,
            frequency=loan.frequency,
            day_count=loan.day_count,
            currency=loan.currency,
            disbursed_on=disbursed_on,
            first_due_date=first_due,
        )
    )
    booked = loan_schedule(loan, disbursed_on, first_due)
    assert booked == preview
    assert len(booked.installments) == installment_count(loan.term_months, loan.frequency)
    assert booked.total_principal == loan.principal
