"""Input validation for applications and decisions, against the product's bounds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from lending.errors import DomainError, DomainErrors, ErrorCode
from lending.money import parse_amount, parse_rate
from lending.states import DecisionOutcome

MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 254
MAX_REASON_LENGTH = 2000
MAX_PURPOSE_LENGTH = 500

# Deliberately permissive: one "@", no spaces, a dot in the domain. Deliverability is not checked.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{5,30}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ProductBounds(Protocol):
    """What validation needs to know of a loan product."""

    code: str
    currency: str
    min_amount: Decimal
    max_amount: Decimal
    min_term_months: int
    max_term_months: int
    active: bool


@dataclass(frozen=True)
class ApplicantInput:
    """A validated applicant: trimmed name, email as given (compared case-insensitively)."""

    full_name: str
    email: str
    phone: str | None


@dataclass(frozen=True)
class ApplicationInput:
    """A validated application."""

    applicant: ApplicantInput
    product_code: str
    amount: Decimal
    term_months: int
    purpose: str | None
    declared_monthly_income: Decimal | None


@dataclass(frozen=True)
class DecisionInput:
    """A validated decision; approved terms only with APPROVED."""

    outcome: DecisionOutcome
    reason: str
    approved_amount: Decimal | None
    annual_interest_rate: Decimal | None
    term_months: int | None


class _Collector:
    """Gathers every field error of one input so the client can fix them all at once."""

    def __init__(self) -> None:
        self.errors: list[DomainError] = []

    def add(self, error: DomainError) -> None:
        self.errors.append(error)

    def check(self) -> None:
        if self.errors:
            raise DomainErrors(self.errors)


def clean_text(
    raw: str | None,
    field: str,
    *,
    max_length: int,
    required: bool,
    label: str,
    multiline: bool = False,
) -> str | None:
    """Trim ``raw`` and check its length and that it holds no control characters."""
    text = (raw or "").strip()
    if not text:
        if required:
            raise DomainError(ErrorCode.VALIDATION_FAILED, f"{label} is required.", field)
        return None
    if len(text) > max_length:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            f"{label} must be at most {max_length} characters (got {len(text)}).",
            field,
        )
    if _CONTROL.search(text.replace("\n", "") if multiline else text):
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, f"{label} must not contain control characters.", field
        )
    return text


def validate_email(raw: str, field: str) -> str:
    """Check the shape of an email address."""
    email = clean_text(raw, field, max_length=MAX_EMAIL_LENGTH, required=True, label="Email")
    assert email is not None
    if not _EMAIL.match(email):
        raise DomainError(ErrorCode.VALIDATION_FAILED, f"{email[:60]!r} is not an email.", field)
    return email


def check_amount_in_range(amount: Decimal, product: ProductBounds, field: str) -> None:
    """AMOUNT_OUT_OF_RANGE unless the product lends ``amount``."""
    if not product.min_amount <= amount <= product.max_amount:
        raise DomainError(
            ErrorCode.AMOUNT_OUT_OF_RANGE,
            f"{product.code} lends {product.min_amount} to {product.max_amount} "
            f"{product.currency}; got {amount}.",
            field,
        )


def check_term_in_range(term: int, product: ProductBounds, field: str) -> None:
    """TERM_OUT_OF_RANGE unless the product allows ``term`` months."""
    if not product.min_term_months <= term <= product.max_term_months:
        raise DomainError(
            ErrorCode.TERM_OUT_OF_RANGE,
            f"{product.code} runs {product.min_term_months} to {product.max_term_months} "
            f"months; got {term}.",
            field,
        )


def check_product_open(product: ProductBounds | None, code: str, field: str) -> ProductBounds:
    """NOT_FOUND for an unknown product, PRODUCT_INACTIVE for one no longer offered."""
    if product is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"No loan product {code[:40]!r}.", field)
    if not product.active:
        raise DomainError(
            ErrorCode.PRODUCT_INACTIVE, f"Loan product {product.code} is not offered.", field
        )
    return product


def validate_applicant(full_name: str, email: str, phone: str | None) -> ApplicantInput:
    """Validate the applicant part of an application (fields under ``applicant``)."""
    errors = _Collector()
    name = email_ok = phone_ok = None
    try:
        name = clean_text(
            full_name,
            "applicant.fullName",
            max_length=MAX_NAME_LENGTH,
            required=True,
            label="Full name",
        )
    except DomainError as e:
        errors.add(e)
    try:
        email_ok = validate_email(email, "applicant.email")
    except DomainError as e:
        errors.add(e)
    try:
        phone_ok = clean_text(
            phone, "applicant.phone", max_length=32, required=False, label="Phone"
        )
        if phone_ok is not None and not _PHONE.match(phone_ok):
            raise DomainError(
                ErrorCode.VALIDATION_FAILED,
                "Phone must be digits, spaces, dashes or brackets, optionally after a '+'.",
                "applicant.phone",
            )
    except DomainError as e:
        errors.add(e)
    errors.check()
    assert name is not None
    assert email_ok is not None
    return ApplicantInput(full_name=name, email=email_ok, phone=phone_ok)


def validate_application(
    *,
    full_name: str,
    email: str,
    phone: str | None,
    product: ProductBounds | None,
    product_code: str,
    amount: object,
    term_months: int,
    purpose: str | None,
    declared_monthly_income: object | None,
) -> ApplicationInput:
    """Validate a whole application; raise DomainErrors listing every bad field."""
    errors = _Collector()
    applicant: ApplicantInput | None = None
    try:
        applicant = validate_applicant(full_name, email, phone)
    except DomainErrors as e:
        errors.errors.extend(e.errors)
    try:
        product = check_product_open(product, product_code, "productCode")
    except DomainError as e:
        errors.add(e)
        errors.check()
    assert product is not None
    parsed_amount: Decimal | None = None
    try:
        parsed_amount = parse_amount(amount, product.currency, "amount")
        check_amount_in_range(parsed_amount, product, "amount")
    except DomainError as e:
        errors.add(e)
    try:
        check_term_in_range(term_months, product, "termMonths")
    except DomainError as e:
        errors.add(e)
    clean_purpose = income = None
    try:
        clean_purpose = clean_text(
            purpose,
            "purpose",
            max_length=MAX_PURPOSE_LENGTH,
            required=False,
            label="Purpose",
            multiline=True,
        )
    except DomainError as e:
        errors.add(e)
    if declared_monthly_income is not None:
        try:
            income = parse_amount(
                declared_monthly_income, product.currency, "declaredMonthlyIncome"
            )
        except DomainError as e:
            errors.add(e)
    errors.check()
    assert applicant is not None
    assert parsed_amount is not None
    return ApplicationInput(
        applicant=applicant,
        product_code=product.code,
        amount=parsed_amount,
        term_months=term_months,
        purpose=clean_purpose,
        declared_monthly_income=income,
    )


def parse_outcome(raw: str) -> DecisionOutcome:
    """The DecisionOutcome named by ``raw``, or VALIDATION_FAILED."""
    try:
        return DecisionOutcome(raw)
    except ValueError:
        allowed = ", ".join(o.value for o in DecisionOutcome)
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            f"Unknown outcome {raw[:40]!r}; expected one of {allowed}.",
            "outcome",
        ) from None


def validate_decision(
    *,
    outcome: str,
    reason: str,
    approved_amount: object | None,
    annual_interest_rate: object | None,
    term_months: int | None,
    product: ProductBounds,
) -> DecisionInput:
    """Validate a decision against the application's product; raise DomainErrors."""
    errors = _Collector()
    parsed_outcome: DecisionOutcome | None = None
    clean_reason: str | None = None
    try:
        parsed_outcome = parse_outcome(outcome)
    except DomainError as e:
        errors.add(e)
    try:
        clean_reason = clean_text(
            reason,
            "reason",
            max_length=MAX_REASON_LENGTH,
            required=True,
            label="Reason",
            multiline=True,
        )
    except DomainError as e:
        errors.add(e)
    amount = rate = None
    given = {
        "approvedAmount": approved_amount,
        "annualInterestRate": annual_interest_rate,
        "termMonths": term_months,
    }
    if parsed_outcome is not None and parsed_outcome is not DecisionOutcome.APPROVED:
        for field, value in given.items():
            if value is not None:
                errors.add(
                    DomainError(
                        ErrorCode.VALIDATION_FAILED,
                        "Approved terms are only given with outcome APPROVED.",
                        field,
                    )
                )
    else:
        if approved_amount is not None:
            try:
                amount = parse_amount(approved_amount, product.currency, "approvedAmount")
                check_amount_in_range(amount, product, "approvedAmount")
            except DomainError as e:
                errors.add(e)
        if annual_interest_rate is not None:
            try:
                rate = parse_rate(annual_interest_rate, "annualInterestRate")
            except DomainError as e:
                errors.add(e)
        if term_months is not None:
            try:
                check_term_in_range(term_months, product, "termMonths")
            except DomainError as e:
                errors.add(e)
    errors.check()
    assert parsed_outcome is not None
    assert clean_reason is not None
    return DecisionInput(
        outcome=parsed_outcome,
        reason=clean_reason,
        approved_amount=amount,
        annual_interest_rate=rate,
        term_months=term_months,
    )
