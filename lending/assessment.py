"""Assessments: the score, model, factors and evidence behind a decision, and the product's
policy on them (DOMAIN: Assessment)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from lending.errors import DomainError, DomainErrors, ErrorCode
from lending.money import decimal_places, to_decimal
from lending.states import DecisionOutcome

MAX_SCORE = Decimal(1000)
SCORE_DECIMALS = 4
MAX_FACTORS = 50
MAX_EVIDENCE = 20
MAX_MODEL_LENGTH = 100
MAX_FACTOR_NAME_LENGTH = 100
MAX_FACTOR_DETAIL_LENGTH = 500
MAX_EVIDENCE_LENGTH = 200
MAX_CONTRIBUTION = Decimal("99999999.9999")  # NUMERIC(12, 4)

_FOUR_DECIMALS = Decimal("0.0001")
_MODEL = re.compile(r"^[^@\s]+@[^@\s]+$")  # name@version
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Factor:
    """What moved the score, and by how much (signed)."""

    name: str
    contribution: Decimal
    detail: str | None


@dataclass(frozen=True)
class Assessment:
    """A validated assessment."""

    score: Decimal
    model: str
    factors: tuple[Factor, ...]
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class RawFactor:
    """A factor as a client sent it."""

    name: str
    contribution: object
    detail: str | None = None


class AssessmentPolicy(Protocol):
    """What a product says about assessments."""

    @property
    def refer_below_score(self) -> Decimal | None: ...
    @property
    def assessment_required(self) -> bool: ...


def _text(raw: str, field: str, label: str, max_length: int) -> str:
    text = raw.strip()
    if not 1 <= len(text) <= max_length:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, f"{label} must have 1 to {max_length} characters.", field
        )
    if _CONTROL.search(text):
        raise DomainError(
            ErrorCode.VALIDATION_FAILED, f"{label} must not contain control characters.", field
        )
    return text


def _score(raw: object, field: str) -> Decimal:
    value = to_decimal(raw, field, "Score")
    if not 0 <= value <= MAX_SCORE:
        raise DomainError(ErrorCode.VALIDATION_FAILED, "A score is between 0 and 1000.", field)
    if decimal_places(value) > SCORE_DECIMALS:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            f"A score has at most {SCORE_DECIMALS} decimal places.",
            field,
        )
    return value.quantize(_FOUR_DECIMALS)  # as stored (NUMERIC(8, 4)), and as read back


def _factor(raw: RawFactor, field: str) -> Factor:
    name = _text(raw.name, f"{field}.name", "A factor's name", MAX_FACTOR_NAME_LENGTH)
    contribution = to_decimal(raw.contribution, f"{field}.contribution", "Contribution")
    if contribution.copy_abs() > MAX_CONTRIBUTION or decimal_places(contribution) > 4:
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            "A contribution is at most 99,999,999.9999 either way, with 4 decimal places.",
            f"{field}.contribution",
        )
    detail = None
    if raw.detail is not None and raw.detail.strip():
        detail = _text(raw.detail, f"{field}.detail", "A factor's detail", MAX_FACTOR_DETAIL_LENGTH)
    return Factor(name, contribution.quantize(_FOUR_DECIMALS), detail)


def validate_assessment(
    *, score: object, model: str, factors: Sequence[RawFactor], evidence: Sequence[str]
) -> Assessment:
    """Check an assessment; every problem at once, each with its path under ``assessment``."""
    errors: list[DomainError] = []
    valid_score = valid_model = None
    try:
        valid_score = _score(score, "assessment.score")
    except DomainError as error:
        errors.append(error)
    try:
        valid_model = _model(model)
    except DomainError as error:
        errors.append(error)
    valid_factors: list[Factor] = []
    valid_evidence: list[str] = []
    if len(factors) > MAX_FACTORS:
        errors.append(_too_many("factors", MAX_FACTORS, len(factors)))
    if len(evidence) > MAX_EVIDENCE:
        errors.append(_too_many("evidence", MAX_EVIDENCE, len(evidence)))
    for n, raw in enumerate(factors[:MAX_FACTORS]):
        try:
            valid_factors.append(_factor(raw, f"assessment.factors.{n}"))
        except DomainError as error:
            errors.append(error)
    for n, item in enumerate(evidence[:MAX_EVIDENCE]):
        field = f"assessment.evidence.{n}"
        try:
            valid_evidence.append(_text(item, field, "An evidence reference", MAX_EVIDENCE_LENGTH))
        except DomainError as error:
            errors.append(error)
    if errors or valid_score is None or valid_model is None:
        raise DomainErrors(errors)
    return Assessment(valid_score, valid_model, tuple(valid_factors), tuple(valid_evidence))


def _too_many(name: str, most: int, got: int) -> DomainError:
    return DomainError(
        ErrorCode.VALIDATION_FAILED,
        f"An assessment has at most {most} {name} items (got {got}).",
        f"assessment.{name}",
    )


def _model(raw: str) -> str:
    model = _text(raw, "assessment.model", "The model", MAX_MODEL_LENGTH)
    if not _MODEL.match(model):
        raise DomainError(
            ErrorCode.VALIDATION_FAILED,
            "The model is written name@version, such as credit-score@2.1.",
            "assessment.model",
        )
    return model


def check_policy(
    product: AssessmentPolicy, outcome: DecisionOutcome, assessment: Assessment | None
) -> None:
    """POLICY_VIOLATION when a decision breaks its product's assessment policy.

    REFERRED and REJECTED are always allowed. An APPROVED decision on a product with a
    ``refer_below_score`` must carry a score at least that high: an approval without a score
    would walk around the threshold.
    """
    if assessment is None and product.assessment_required:
        raise DomainError(
            ErrorCode.POLICY_VIOLATION,
            "This product requires an assessment with every decision.",
            "assessment",
        )
    threshold = product.refer_below_score
    if outcome is not DecisionOutcome.APPROVED or threshold is None:
        return
    if assessment is None:
        raise DomainError(
            ErrorCode.POLICY_VIOLATION,
            f"Approving on this product needs an assessment scoring at least {threshold}.",
            "assessment",
        )
    if assessment.score < threshold:
        raise DomainError(
            ErrorCode.POLICY_VIOLATION,
            f"A score of {assessment.score} is below this product's threshold of {threshold}: "
            "refer the application instead.",
            "assessment.score",
        )
