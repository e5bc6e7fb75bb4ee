"""Repayment schedule rules from DOMAIN.md, checked to the minor unit."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from lending.money import round_money
from lending.schedule import (
    Schedule,
    ScheduleTerms,
    annuity_payment,
    build_schedule,
    due_dates,
    periodic_rate,
)
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

ANNUITY = AmortizationMethod.ANNUITY
EQUAL = AmortizationMethod.EQUAL_PRINCIPAL
MONTHLY = RepaymentFrequency.MONTHLY
BIWEEKLY = RepaymentFrequency.BIWEEKLY
WEEKLY = RepaymentFrequency.WEEKLY
D30 = DayCount.THIRTY_360
A365 = DayCount.ACTUAL_365


def terms(
    principal: str = "100.00",
    rate: str = "9.4822",
    count: int = 6,
    method: AmortizationMethod = ANNUITY,
    frequency: RepaymentFrequency = MONTHLY,
    day_count: DayCount = D30,
    currency: str = "USD",
    disbursed_on: date = date(2024, 1, 15),
    first_due_date: date | None = None,
) -> ScheduleTerms:
    return ScheduleTerms(
        principal=Decimal(principal),
        annual_rate=Decimal(rate),
        installments=count,
        method=method,
        frequency=frequency,
        day_count=day_count,
        currency=currency,
        disbursed_on=disbursed_on,
        first_due_date=first_due_date,
    )


def amounts(values: str) -> list[Decimal]:
    return [Decimal(v) for v in values.split()]


def assert_consistent(schedule: Schedule, principal: Decimal, currency: str) -> None:
    rows = schedule.installments
    assert sum(row.principal for row in rows) == principal
    assert rows[-1].balance_after == 0
    balance = principal
    for row in rows:
        assert row.principal >= 0
        assert row.interest >= 0
        assert row.total == row.principal + row.interest
        balance -= row.principal
        assert row.balance_after == balance
        for value in (row.principal, row.interest, row.total, row.balance_after):
            assert value == round_money(value, currency)
            assert value.as_tuple().exponent == round_money(value, currency).as_tuple().exponent
    assert schedule.total_principal == principal
    assert schedule.total_interest == sum(row.interest for row in rows)
    assert schedule.total_payable == schedule.total_principal + schedule.total_interest
    assert schedule.maturity_date == rows[-1].due_date


# DOMAIN.md reference cases.


def test_reference_case_9_4822_percent_over_6() -> None:
    schedule = build_schedule(terms())
    rows = schedule.installments
    assert [row.total for row in rows] == [Decimal("17.13")] * 6
    assert [row.interest for row in rows] == amounts("0.79 0.66 0.53 0.40 0.27 0.13")
    assert [row.balance_after for row in rows] == amounts("83.66 67.19 50.59 33.86 17.00 0.00")
    assert [row.principal for row in rows] == amounts("16.34 16.47 16.60 16.73 16.86 17.00")
    assert schedule.total_interest == Decimal("2.78")
    assert schedule.total_payable == Decimal("102.78")
    assert_consistent(schedule, Decimal("100.00"), "USD")


def test_reference_case_7_percent_over_12() -> None:
    schedule = build_schedule(terms(rate="7", count=12))
    rows = schedule.installments
    assert all(row.total == Decimal("8.65") for row in rows[:-1])
    last = rows[-1]
    assert [last.principal, last.interest, last.total] == amounts("8.64 0.05 8.69")
    assert schedule.total_interest == Decimal("3.84")
    assert_consistent(schedule, Decimal("100.00"), "USD")


def test_reference_case_9_99_percent_over_36() -> None:
    schedule = build_schedule(terms(principal="100000.00", rate="9.99", count=36))
    rows = schedule.installments
    assert rows[0].total == Decimal("3226.25")
    assert rows[0].interest == Decimal("832.50")
    assert all(row.total == Decimal("3226.25") for row in rows)
    last = rows[-1]
    assert [last.principal, last.interest] == amounts("3199.61 26.64")
    assert schedule.total_interest == Decimal("16145.00")
    assert_consistent(schedule, Decimal("100000.00"), "USD")


def test_annuity_payment_matches_the_reference_instalments() -> None:
    monthly_7 = periodic_rate(Decimal("7"), MONTHLY)
    assert annuity_payment(Decimal("100.00"), monthly_7, 12, "USD") == Decimal("8.65")
    assert annuity_payment(Decimal("100.00"), Decimal(0), 3, "USD") == Decimal("33.33")


# Periodic rate.


@pytest.mark.parametrize(
    ("frequency", "expected"),
    [
        (MONTHLY, Decimal("0.12") / 12),
        (BIWEEKLY, Decimal("0.12") / 26),
        (WEEKLY, Decimal("0.12") / 52),
    ],
)
def test_periodic_rate(frequency: RepaymentFrequency, expected: Decimal) -> None:
    rate = periodic_rate(Decimal("12"), frequency)
    assert abs(rate - expected) < Decimal("1e-26")
    assert isinstance(rate, Decimal)


def test_periodic_rate_keeps_more_precision_than_the_default_context() -> None:
    rate = periodic_rate(Decimal("9.99"), BIWEEKLY)
    assert len(rate.as_tuple().digits) > 28


# Due dates.


def test_monthly_due_dates_clamp_to_month_end_and_keep_the_anchor() -> None:
    got = due_dates(MONTHLY, date(2022, 12, 31), 6)
    assert got == [
        date(2023, 1, 31),
        date(2023, 2, 28),
        date(2023, 3, 31),
        date(2023, 4, 30),
        date(2023, 5, 31),
        date(2023, 6, 30),
    ]


def test_monthly_due_dates_in_a_leap_year() -> None:
    got = due_dates(MONTHLY, date(2023, 12, 31), 4)
    assert got == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]


def test_monthly_due_dates_from_an_explicit_first_due_date_use_its_day() -> None:
    got = due_dates(MONTHLY, date(2024, 1, 10), 4, date(2024, 1, 31))
    assert got == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31), date(2024, 4, 30)]
    got = due_dates(MONTHLY, date(2024, 1, 31), 3, date(2024, 2, 15))
    assert got == [date(2024, 2, 15), date(2024, 3, 15), date(2024, 4, 15)]


def test_monthly_due_dates_cross_the_year_end() -> None:
    got = due_dates(MONTHLY, date(2024, 11, 30), 3)
    assert got == [date(2024, 12, 30), date(2025, 1, 30), date(2025, 2, 28)]


def test_monthly_anchor_29_and_30() -> None:
    assert due_dates(MONTHLY, date(2023, 1, 29), 2) == [date(2023, 2, 28), date(2023, 3, 29)]
    assert due_dates(MONTHLY, date(2024, 1, 30), 2) == [date(2024, 2, 29), date(2024, 3, 30)]


@pytest.mark.parametrize(("frequency", "days"), [(BIWEEKLY, 14), (WEEKLY, 7)])
def test_weekly_and_biweekly_due_dates(frequency: RepaymentFrequency, days: int) -> None:
    start = date(2024, 2, 20)
    assert due_dates(frequency, start, 3) == [start + timedelta(days=days * k) for k in (1, 2, 3)]
    first = date(2024, 3, 1)
    got = due_dates(frequency, start, 3, first)
    assert got == [first + timedelta(days=days * k) for k in (0, 1, 2)]


def test_due_dates_of_zero_instalments_is_empty() -> None:
    assert due_dates(MONTHLY, date(2024, 1, 1), 0) == []


def test_schedule_uses_the_first_due_date() -> None:
    schedule = build_schedule(
        terms(disbursed_on=date(2024, 1, 5), first_due_date=date(2024, 1, 31), count=3)
    )
    assert [row.due_date for row in schedule.installments] == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
    ]
    assert schedule.maturity_date == date(2024, 3, 31)


# Methods, frequencies and day counts.


@pytest.mark.parametrize("method", [ANNUITY, EQUAL])
@pytest.mark.parametrize("frequency", [MONTHLY, BIWEEKLY, WEEKLY])
@pytest.mark.parametrize("day_count", [D30, A365])
@pytest.mark.parametrize(("currency", "principal"), [("USD", "12345.67"), ("JPY", "1234567")])
def test_every_combination_is_consistent(
    method: AmortizationMethod,
    frequency: RepaymentFrequency,
    day_count: DayCount,
    currency: str,
    principal: str,
) -> None:
    loan = terms(
        principal=principal,
        rate="18.5",
        count=24,
        method=method,
        frequency=frequency,
        day_count=day_count,
        currency=currency,
        disbursed_on=date(2023, 12, 31),
    )
    schedule = build_schedule(loan)
    assert len(schedule.installments) == 24
    assert schedule.installments[0].due_date == due_dates(frequency, loan.disbursed_on, 1)[0]
    assert schedule.total_interest > 0
    assert_consistent(schedule, loan.principal, currency)


def test_equal_principal_thirty_360() -> None:
    schedule = build_schedule(terms(principal="1000.00", rate="12", count=4, method=EQUAL))
    rows = schedule.installments
    assert [row.principal for row in rows] == amounts("250.00 250.00 250.00 250.00")
    assert [row.interest for row in rows] == amounts("10.00 7.50 5.00 2.50")
    assert [row.total for row in rows] == amounts("260.00 257.50 255.00 252.50")


def test_equal_principal_last_instalment_takes_the_remainder() -> None:
    schedule = build_schedule(terms(principal="100.00", rate="0", count=3, method=EQUAL))
    assert [row.principal for row in schedule.installments] == amounts("33.33 33.33 33.34")


def test_actual_365_counts_the_days_of_each_period() -> None:
    schedule = build_schedule(
        terms(
            principal="1000.00",
            rate="36.5",
            count=3,
            method=EQUAL,
            day_count=A365,
            disbursed_on=date(2023, 1, 31),
        )
    )
    rows = schedule.installments
    assert [row.due_date for row in rows] == [
        date(2023, 2, 28),
        date(2023, 3, 31),
        date(2023, 4, 30),
    ]
    # 1000 * 0.365 * 28/365, 666.67 * 0.365 * 31/365, 333.34 * 0.365 * 30/365
    assert [row.interest for row in rows] == amounts("28.00 20.67 10.00")


def test_actual_365_first_period_runs_from_disbursement_to_first_due_date() -> None:
    schedule = build_schedule(
        terms(
            principal="1000.00",
            rate="12",
            count=12,
            day_count=A365,
            disbursed_on=date(2024, 1, 10),
            first_due_date=date(2024, 4, 10),
        )
    )
    rows = schedule.installments
    assert rows[0].interest == round_money(Decimal("1000") * Decimal("0.12") * 91 / 365, "USD")
    assert all(row.total == Decimal("88.85") for row in rows[:-1])
    assert_consistent(schedule, Decimal("1000.00"), "USD")


def test_actual_365_annuity_never_has_negative_principal() -> None:
    loan = terms(
        principal="1000000.00",
        rate="36",
        count=360,
        day_count=A365,
        disbursed_on=date(2024, 1, 1),
    )
    level = annuity_payment(loan.principal, periodic_rate(loan.annual_rate, MONTHLY), 360, "USD")
    schedule = build_schedule(loan)
    first = schedule.installments[0]
    # 31 days of interest exceed A, so the whole instalment is interest.
    assert first.interest > level
    assert first.principal == 0
    assert first.total == first.interest
    assert first.balance_after == loan.principal
    for row in schedule.installments[:-1]:
        assert row.principal == 0 or row.total == level or row.balance_after == 0
    assert_consistent(schedule, loan.principal, "USD")


# Zero rate and currencies with no minor digits.


@pytest.mark.parametrize("method", [ANNUITY, EQUAL])
@pytest.mark.parametrize("day_count", [D30, A365])
def test_zero_rate(method: AmortizationMethod, day_count: DayCount) -> None:
    schedule = build_schedule(
        terms(principal="1000.00", rate="0", count=3, method=method, day_count=day_count)
    )
    assert [row.principal for row in schedule.installments] == amounts("333.33 333.33 333.34")
    assert all(row.interest == 0 for row in schedule.installments)
    assert schedule.total_payable == Decimal("1000.00")


def test_jpy_amounts_are_whole_yen() -> None:
    schedule = build_schedule(terms(principal="1000000", rate="5", count=12, currency="JPY"))
    rows = schedule.installments
    assert rows[0].total == Decimal("85607")
    assert rows[0].interest == Decimal("4167")
    assert all(row.total == Decimal("85607") for row in rows[:-1])
    assert (rows[-1].principal, rows[-1].interest) == (Decimal("85257"), Decimal("355"))
    assert_consistent(schedule, Decimal("1000000"), "JPY")


def test_rounded_level_principal_never_exceeds_the_balance() -> None:
    # round(13 / 8) = 2 repays everything by the seventh instalment.
    schedule = build_schedule(
        terms(principal="13", rate="0", count=8, method=EQUAL, frequency=WEEKLY, currency="JPY")
    )
    assert [row.principal for row in schedule.installments] == amounts("2 2 2 2 2 2 1 0")
    assert_consistent(schedule, Decimal("13"), "JPY")


def test_bankers_rounding_of_the_level_principal() -> None:
    # 6 / 4 = 1.5 rounds half to even: 2.
    schedule = build_schedule(terms(principal="6", rate="0", count=4, method=EQUAL, currency="JPY"))
    assert [row.principal for row in schedule.installments] == amounts("2 2 2 0")


def test_single_instalment() -> None:
    schedule = build_schedule(terms(principal="500.00", rate="12", count=1))
    (row,) = schedule.installments
    assert [row.principal, row.interest, row.total] == amounts("500.00 5.00 505.00")


def test_same_terms_give_the_same_schedule() -> None:
    loan = terms(principal="2500.00", rate="13.25", count=18, day_count=A365)
    assert build_schedule(loan) == build_schedule(loan)


# Validation.


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"count": 0}, "installments"),
        ({"count": -3}, "installments"),
        ({"principal": "0.00"}, "principal"),
        ({"principal": "-1.00"}, "principal"),
        ({"principal": "100.001"}, "decimal places"),
        ({"principal": "100.5", "currency": "JPY"}, "decimal places"),
        ({"rate": "-0.01"}, "annual_rate"),
        ({"first_due_date": date(2024, 1, 15)}, "first_due_date"),
        ({"first_due_date": date(2024, 1, 14)}, "first_due_date"),
        ({"currency": "XXX"}, "currency"),
    ],
)
def test_invalid_terms_are_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_schedule(terms(**changes))  # type: ignore[arg-type]
