"""Intake and decisions: apply for a loan, decide an application, withdraw it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AssessmentFactor, Decision, Loan, LoanApplication, LoanProduct
from db.repositories import applicants as applicant_repo
from db.repositories import applications as application_repo
from db.repositories import products as product_repo
from db.repositories.audit import snapshot
from lending.assessment import Assessment, RawFactor, check_policy, validate_assessment
from lending.audit import AuditAction, Caller
from lending.errors import DomainError, DomainErrors, ErrorCode, check_version
from lending.references import new_reference
from lending.services.audit import Change, record
from lending.states import (
    ACTION_FOR_OUTCOME,
    ApplicationAction,
    ApplicationStatus,
    DecisionOutcome,
    LoanStatus,
    next_status,
)
from lending.validation import (
    MAX_REASON_LENGTH,
    DecisionInput,
    clean_text,
    validate_application,
    validate_decision,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Decided:
    """What a decision produced: the updated application, the decision, and any new loan."""

    application: LoanApplication
    decision: Decision
    loan: Loan | None


async def apply_for_loan(
    session: AsyncSession,
    caller: Caller,
    *,
    full_name: str,
    email: str,
    phone: str | None,
    product_code: str,
    amount: object,
    term_months: int,
    purpose: str | None,
    declared_monthly_income: object | None,
    submitted_at: datetime | None = None,
) -> LoanApplication:
    """Submit an application; DUPLICATE_OPEN_APPLICATION if the applicant has one open."""
    product = await product_repo.product_by_code(session, product_code.strip())
    valid = validate_application(
        full_name=full_name,
        email=email,
        phone=phone,
        product=product,
        product_code=product_code,
        amount=amount,
        term_months=term_months,
        purpose=purpose,
        declared_monthly_income=declared_monthly_income,
    )
    assert product is not None
    if caller.owner is not None and valid.applicant.email.lower() != caller.owner:
        raise DomainError(
            ErrorCode.FORBIDDEN,
            "A borrower applies for themselves: the email must be the one you signed in with.",
            "applicant.email",
        )
    applicant = await applicant_repo.get_or_create_applicant(
        session,
        full_name=valid.applicant.full_name,
        email=valid.applicant.email,
        phone=valid.applicant.phone,
        created_at=submitted_at,
    )
    application = LoanApplication(
        reference=new_reference("APP"),
        applicant_id=applicant.id,
        product_id=product.id,
        amount_requested=valid.amount,
        term_months=valid.term_months,
        purpose=valid.purpose,
        declared_monthly_income=valid.declared_monthly_income,
        status=ApplicationStatus.SUBMITTED,
    )
    if submitted_at is not None:
        application.submitted_at = application.updated_at = submitted_at
    added = await application_repo.add_application(session, application)
    if added is None:
        raise DomainError(
            ErrorCode.DUPLICATE_OPEN_APPLICATION,
            f"{valid.applicant.email} already has an open application; decide or "
            "withdraw it first.",
            "applicant.email",
        )
    application = added
    await record(
        session,
        caller,
        Change(AuditAction.APPLICATION_SUBMITTED, application),
        application_id=application.id,
        new_chain=True,
    )
    return application


def _not_found() -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, "No such application.", "applicationId")


async def _locked(session: AsyncSession, application_id: int) -> LoanApplication:
    application = await application_repo.lock_application(session, application_id)
    if application is None:
        raise _not_found()
    return application


async def decide_application(
    session: AsyncSession,
    caller: Caller,
    *,
    application_id: int,
    outcome: str,
    reason: str,
    approved_amount: object | None,
    annual_interest_rate: object | None,
    term_months: int | None,
    expected_version: int | None = None,
    decided_at: datetime | None = None,
    assessment: AssessmentIn | None = None,
) -> Decided:
    """Record a decision; an APPROVED one also creates the loan with the approved terms.

    The assessment behind it, if given, is kept with it and checked against the product's
    policy (POLICY_VIOLATION).
    """
    locked = await application_repo.lock_application_with_product(session, application_id)
    if locked is None:
        raise _not_found()
    application, product = locked
    check_version(expected_version, application.version)
    before = snapshot(application)
    valid, assessed = _validated(
        outcome=outcome,
        reason=reason,
        approved_amount=approved_amount,
        annual_interest_rate=annual_interest_rate,
        term_months=term_months,
        product=product,
        assessment=assessment,
    )
    status = next_status(application.status, ACTION_FOR_OUTCOME[valid.outcome])
    check_policy(product, valid.outcome, assessed)
    decision = Decision(
        application_id=application.id,
        outcome=valid.outcome,
        reason=valid.reason,
        decided_by=caller.actor,
        approved_amount=valid.approved_amount,
        annual_interest_rate=valid.annual_interest_rate,
        term_months=valid.term_months,
        score=assessed.score if assessed else None,
        model=assessed.model if assessed else None,
        evidence=list(assessed.evidence) if assessed else None,
    )
    factors = [
        AssessmentFactor(position=n, name=f.name, contribution=f.contribution, detail=f.detail)
        for n, f in enumerate(assessed.factors if assessed else ())
    ]
    if decided_at is not None:
        decision.decided_at = decided_at
    loan = None
    if valid.outcome is DecisionOutcome.APPROVED:
        # approved_at is the decision's time, which the database assigns.
        loan = Loan(
            reference=new_reference("LN"),
            application_id=application.id,
            applicant_id=application.applicant_id,
            principal=_first(valid.approved_amount, application.amount_requested),
            currency=product.currency,
            annual_interest_rate=_first(valid.annual_interest_rate, product.annual_interest_rate),
            term_months=_first(valid.term_months, application.term_months),
            amortization=product.amortization,
            frequency=product.frequency,
            day_count=product.day_count,
            status=LoanStatus.APPROVED,
            principal_paid=Decimal("0.00"),  # nothing paid yet, as the column holds it
            interest_paid=Decimal("0.00"),
        )
    application = await application_repo.record_decision(
        session, application, status, decision, loan, factors
    )
    listed = {"factors": [snapshot(f) | {"decision_id": decision.id} for f in factors]}
    changes = [Change(AuditAction.DECISION_RECORDED, decision, also=listed if assessed else None)]
    if loan is not None:
        changes.append(Change(AuditAction.LOAN_CREATED, loan, loan_id=loan.id))
    changes.append(
        Change(
            AuditAction.APPLICATION_DECIDED, application, before, loan_id=loan.id if loan else None
        )
    )
    await record(session, caller, *changes, application_id=application.id)
    return Decided(application=application, decision=decision, loan=loan)


def _validated(
    *,
    outcome: str,
    reason: str,
    approved_amount: object | None,
    annual_interest_rate: object | None,
    term_months: int | None,
    product: LoanProduct,
    assessment: AssessmentIn | None,
) -> tuple[DecisionInput, Assessment | None]:
    """The decision and its assessment checked, every problem of both reported at once."""
    errors: list[DomainError] = []
    valid = assessed = None
    try:
        valid = validate_decision(
            outcome=outcome,
            reason=reason,
            approved_amount=approved_amount,
            annual_interest_rate=annual_interest_rate,
            term_months=term_months,
            product=product,
        )
    except DomainErrors as found:
        errors += found.errors
    except DomainError as found:
        errors.append(found)
    if assessment is not None:
        try:
            assessed = validate_assessment(
                score=assessment.score,
                model=assessment.model,
                factors=assessment.factors,
                evidence=assessment.evidence,
            )
        except DomainErrors as found:
            errors += found.errors
    if errors or valid is None:
        raise DomainErrors(errors)
    return valid, assessed


@dataclass(frozen=True)
class AssessmentIn:
    """An assessment as a client sent it (checked by lending.assessment)."""

    score: object
    model: str
    factors: Sequence[RawFactor] = ()
    evidence: Sequence[str] = ()


def _first(given: T | None, default: T) -> T:
    return default if given is None else given


async def withdraw_application(
    session: AsyncSession,
    caller: Caller,
    *,
    application_id: int,
    reason: str | None,
    expected_version: int | None = None,
) -> LoanApplication:
    """Withdraw an open application at the applicant's request, keeping the reason given."""
    clean_reason = clean_text(
        reason,
        "reason",
        max_length=MAX_REASON_LENGTH,
        required=False,
        label="Reason",
        multiline=True,
    )
    application = await _locked(session, application_id)
    if caller.owner is not None and application.applicant_id != await applicant_repo.owner_key(
        session, caller.owner
    ):
        raise _not_found()  # another's application reads as none
    check_version(expected_version, application.version)
    status = next_status(application.status, ApplicationAction.WITHDRAW)
    before = snapshot(application)
    application = await application_repo.set_application_status(
        session, application, status, withdrawal_reason=clean_reason
    )
    await record(
        session,
        caller,
        Change(AuditAction.APPLICATION_WITHDRAWN, application, before),
        application_id=application.id,
    )
    return application
