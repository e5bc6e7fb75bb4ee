"""Domain errors: expected failures with a stable, machine-readable code."""

from __future__ import annotations

import enum


class ErrorCode(enum.Enum):
    """Stable codes of expected failures; grow as needed, never rename."""

    VALIDATION_FAILED = "VALIDATION_FAILED"
    NOT_FOUND = "NOT_FOUND"
    PRODUCT_INACTIVE = "PRODUCT_INACTIVE"
    AMOUNT_OUT_OF_RANGE = "AMOUNT_OUT_OF_RANGE"
    TERM_OUT_OF_RANGE = "TERM_OUT_OF_RANGE"
    DUPLICATE_OPEN_APPLICATION = "DUPLICATE_OPEN_APPLICATION"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    OVERPAYMENT = "OVERPAYMENT"
    PAYMENT_DATE_INVALID = "PAYMENT_DATE_INVALID"
    ALREADY_REVERSED = "ALREADY_REVERSED"
    DUPLICATE_PAYMENT_REFERENCE = "DUPLICATE_PAYMENT_REFERENCE"
    STALE_VERSION = "STALE_VERSION"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    POLICY_VIOLATION = "POLICY_VIOLATION"
    NOT_OVERDUE = "NOT_OVERDUE"
    REMINDER_TOO_SOON = "REMINDER_TOO_SOON"
    SETTLEMENT_AMOUNT_MISMATCH = "SETTLEMENT_AMOUNT_MISMATCH"
    FORBIDDEN = "FORBIDDEN"


class DomainError(Exception):
    """An expected failure: a code, a human message and the input field it concerns."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class DomainErrors(Exception):
    """Several expected failures found together, such as every invalid field of one input."""

    def __init__(self, errors: list[DomainError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


def check_version(expected: int | None, actual: int) -> None:
    """STALE_VERSION when the caller's expected version is not the current one."""
    if expected is not None and expected != actual:
        raise DomainError(
            ErrorCode.STALE_VERSION,
            f"Expected version {expected}, but it is at version {actual}: re-read and retry.",
            "expectedVersion",
        )
