"""Exact money: parsing client input and rounding to a currency's minor unit."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation

from lending.errors import DomainError, ErrorCode

# Minor digits per ISO 4217 currency that the product supports.
MINOR_DIGITS: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "KES": 2,
    "NGN": 2,
    "ZAR": 2,
    "JPY": 0,
    "KRW": 0,
}

# Largest amount a NUMERIC(18, 2) column holds, and a sane ceiling for any input.
MAX_AMOUNT = Decimal("9999999999999999.99")
# More decimals than any amount or rate has; longer inputs cost the database driver dearly.
MAX_DECIMALS = 18


def minor_digits(currency: str) -> int:
    """Number of decimal places of ``currency``'s minor unit."""
    try:
        return MINOR_DIGITS[currency]
    except KeyError:
        raise ValueError(f"unsupported currency {currency!r}") from None


def parse_currency(raw: str, field: str) -> str:
    """A currency code the service supports, exactly as ISO 4217 writes it, or VALIDATION_FAILED."""
    if raw not in MINOR_DIGITS:
        supported = ", ".join(sorted(MINOR_DIGITS))
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            f"{raw[:12]!r} is not a supported currency; use one of {supported}.",
            field,
        )
    return raw


def quantum(currency: str) -> Decimal:
    """The smallest amount of ``currency`` (0.01 for USD, 1 for JPY)."""
    return Decimal(1).scaleb(-minor_digits(currency))


def round_money(value: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit with banker's rounding (ROUND_HALF_EVEN)."""
    return value.quantize(quantum(currency), rounding=ROUND_HALF_EVEN)


SPELLING = (
    "write ASCII digits with an optional minus sign, decimal point and exponent, "
    'without spaces, underscores or a signed zero ("-0")'
)


def decimal_of(text: str) -> Decimal | None:
    """The number ``text`` spells, if it is spelled the one way accepted (``SPELLING``): the
    digits any client means by it, so that one value never arrives in several spellings."""
    if not text.isascii() or "_" in text or text != text.strip():
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return None if value.is_zero() and value.is_signed() else value


def as_written(value: Decimal, currency: str) -> Decimal:
    """An amount as every answer writes it: with exactly its currency's minor digits (JPY
    "78028", USD "12.50"), whether stored (NUMERIC(18, 2)) or computed.

    Amounts already have no more digits than their currency allows, so nothing is rounded in
    practice; where something is, it is as PostgreSQL's round() does (half away from zero), so
    that both read paths agree. Zero is unsigned.
    """
    written = value.quantize(quantum(currency), rounding=ROUND_HALF_UP)
    return written.copy_abs() if written.is_zero() else written


def to_decimal(raw: object, field: str, what: str = "Amount") -> Decimal:
    """Turn client input into a finite Decimal, or raise VALIDATION_FAILED (the messages name
    the value as ``what``: an amount, an interest rate, a score).

    Floats are refused: a binary float cannot carry an exact amount, so amounts travel as strings.
    """
    if isinstance(raw, (bool, float)):
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            f'Send {what.lower()}s as strings such as "1000.00", not as floating-point numbers.',
            field,
        )
    if isinstance(raw, int):
        value = Decimal(raw)
    else:
        text = str(raw)
        found = decimal_of(text)
        if found is None:
            raise DomainError(
                ErrorCode.VALIDATION_FAILED,
                f"{text[:40]!r} is not a decimal number: {SPELLING}.",
                field,
            )
        value = found
    if not value.is_finite():
        raise DomainError(ErrorCode.VALIDATION_FAILED, f"{what} must be a finite number.", field)
    if value.copy_abs() > MAX_AMOUNT:
        raise DomainError(ErrorCode.VALIDATION_FAILED, f"{what} is too large.", field)
    if decimal_places(value) > MAX_DECIMALS:  # 1E-999999999 is finite and small: no amount
        raise DomainError(ErrorCode.VALIDATION_FAILED, "Too many decimal places.", field)
    return value


def decimal_places(value: Decimal) -> int:
    """How many decimals a finite value has, trailing zeros aside ("1.50" has 1).

    Worked out on the digits, not with ``normalize``, which rounds values whose exponent is
    beyond the context's range.
    """
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite values have an integer exponent
    if not any(digits):
        return 0
    trailing = 0
    for digit in reversed(digits):
        if digit != 0 or trailing >= -exponent:
            break
        trailing += 1
    return max(0, -exponent - trailing)


def parse_amount(raw: object, currency: str, field: str) -> Decimal:
    """Parse a positive amount in ``currency`` with no more decimals than its minor unit allows."""
    value = to_decimal(raw, field)
    if value <= 0:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "Amount must be greater than zero.", field)
    digits = minor_digits(currency)
    if decimal_places(value) > digits:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            f"{currency} amounts have at most {digits} decimal places.",
            field,
        )
    return value.quantize(quantum(currency))


def parse_rate(raw: object, field: str) -> Decimal:
    """Parse an annual interest rate in percent: 0 to 100 with at most 6 decimal places."""
    value = to_decimal(raw, field, "Interest rate")
    if value < 0 or value > 100:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, "Interest rate must be between 0 and 100 percent.", field
        )
    if decimal_places(value) > 6:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, "Interest rate has at most 6 decimal places.", field
        )
    return value.quantize(Decimal("0.000001"))
