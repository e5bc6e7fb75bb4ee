"""Money parsing and rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lending.errors import DomainError, ErrorCode
from lending.money import (
    as_written,
    decimal_of,
    decimal_places,
    parse_amount,
    parse_rate,
    round_money,
    to_decimal,
)


@pytest.mark.parametrize(
    ("raw", "currency", "expected"),
    [
        ("10000", "USD", Decimal("10000.00")),
        ("10000.5", "USD", Decimal("10000.50")),
        (Decimal("0.01"), "USD", Decimal("0.01")),
        (1500, "KES", Decimal("1500.00")),
        ("1500", "JPY", Decimal("1500")),
        ("1.50E+3", "USD", Decimal("1500.00")),
    ],
)
def test_valid_amounts(raw, currency, expected):
    parsed = parse_amount(raw, currency, "amount")
    assert parsed == expected
    assert parsed.as_tuple().exponent == expected.as_tuple().exponent


@pytest.mark.parametrize(
    ("raw", "currency"),
    [
        ("-5", "USD"),
        ("0", "USD"),
        ("0.00", "USD"),
        ("abc", "USD"),
        ("", "USD"),
        ("NaN", "USD"),
        ("sNaN", "USD"),
        ("Infinity", "USD"),
        ("-Infinity", "USD"),
        ("1e400", "USD"),
        ("10.001", "USD"),
        ("10.5", "JPY"),
        (10.5, "USD"),
        (True, "USD"),
    ],
)
def test_invalid_amounts_fail_validation(raw, currency):
    with pytest.raises(DomainError) as raised:
        parse_amount(raw, currency, "amount")
    assert raised.value.code is ErrorCode.VALIDATION_FAILED
    assert raised.value.field == "amount"


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("0.125", "USD", "0.12"),  # half to even: down
        ("0.135", "USD", "0.14"),  # half to even: up
        ("2.5", "JPY", "2"),
        ("3.5", "JPY", "4"),
        ("-0.125", "USD", "-0.12"),
    ],
)
def test_rounding_is_bankers(value, currency, expected):
    assert round_money(Decimal(value), currency) == Decimal(expected)


@pytest.mark.parametrize("raw", ["-1", "100.1", "9.1234567", "NaN", "x"])
def test_invalid_rates(raw):
    with pytest.raises(DomainError) as raised:
        parse_rate(raw, "annualInterestRate")
    assert raised.value.code is ErrorCode.VALIDATION_FAILED


def test_rate_keeps_six_decimals():
    assert str(parse_rate("9.99", "r")) == "9.990000"
    assert parse_rate("0", "r") == 0


@pytest.mark.parametrize(
    ("text", "places"),
    [
        ("1.50", 1),
        ("100", 0),
        ("1E+3", 0),
        ("0.000", 0),
        ("12.345", 3),
        ("1E-999999999", 999999999),
    ],
)
def test_decimal_places_ignore_trailing_zeros_and_never_round(text, places):
    assert decimal_places(Decimal(text)) == places


def test_a_vanishingly_small_amount_is_refused():
    with pytest.raises(DomainError):
        to_decimal("1E-999999999", "amount")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1E+30", "Interest rate is too large."),
        ("NaN", "Interest rate must be a finite number."),
        (9.5, 'Send interest rates as strings such as "1000.00", not as floating-point numbers.'),
    ],
)
def test_a_bad_rate_is_named_a_rate_not_an_amount(raw, message):
    # found reviewing the inputs of the schedule code: the rate's errors said "Amount"
    with pytest.raises(DomainError) as refused:
        parse_rate(raw, "terms.annualInterestRate")
    assert refused.value.message == message


@pytest.mark.parametrize(
    "text",
    [
        " 5 ",
        "5 ",
        "\t5",
        "1_000",
        "١٠",  # Arabic-Indic digits
        "１０",  # fullwidth digits
        "-0",
        "-0.00",
        "-0E+3",
        "",
    ],
)
def test_a_number_has_one_spelling(text):
    # found in review: Decimal() reads all of these, so one value arrived in many spellings
    assert decimal_of(text) is None
    with pytest.raises(DomainError) as refused:
        to_decimal(text, "amount")
    assert refused.value.code is ErrorCode.VALIDATION_FAILED
    assert "ASCII digits" in refused.value.message


@pytest.mark.parametrize("text", ["5", "-5", "0", "0.00", "12.50", "1.50E+3", "NaN"])
def test_plain_spellings_are_read(text):
    assert decimal_of(text) == Decimal(text) or text == "NaN"


def test_a_signed_zero_decimal_is_refused_as_well():
    with pytest.raises(DomainError):
        to_decimal(Decimal("-0.00"), "amount")


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("78028.00", "JPY", "78028"),
        ("78028", "JPY", "78028"),
        ("12.5", "USD", "12.50"),
        ("0", "USD", "0.00"),
        ("-0.00", "USD", "0.00"),
        ("0.005", "USD", "0.01"),  # as PostgreSQL's round(): half away from zero
    ],
)
def test_amounts_are_written_with_exactly_their_currency_digits(value, currency, expected):
    assert str(as_written(Decimal(value), currency)) == expected
