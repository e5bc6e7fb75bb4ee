"""GraphQL enums: the domain's enums exposed with a description for every value."""

from __future__ import annotations

import enum
from typing import TypeVar

import strawberry

from lending.access import Role
from lending.decision_stats import DecisionGrouping
from lending.delinquency import DelinquencyBucket, InstallmentStatus
from lending.errors import ErrorCode as DomainErrorCode
from lending.states import (
    ApplicationAction,
    ApplicationStatus,
    DecisionOutcome,
    LoanAction,
    LoanStatus,
    ReminderChannel,
    ReminderStatus,
)
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

E = TypeVar("E", bound=enum.Enum)


def graphql_enum(
    cls: type[E], description: str, values: dict[E, str], name: str | None = None
) -> type[E]:
    """Register ``cls`` as a GraphQL enum, describing each of its values."""
    missing = set(cls) - set(values)
    if missing:
        raise ValueError(f"{cls.__name__}: no description for {sorted(m.name for m in missing)}")
    strawberry.enum(cls, name=name, description=description)
    by_name = {member.name: text for member, text in values.items()}
    for value in cls.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = by_name[value.name]
    return cls


graphql_enum(
    Role,
    "What a caller is for. Staff roles hold API keys or tokens; a borrower signs in with a token "
    "naming their verified email, and reads and acts on their own rows only.",
    {
        Role.ADMIN: "Everything, keys and products included.",
        Role.UNDERWRITER: "Applications and decisions.",
        Role.SERVICER: "Loans once approved: disbursement, payments, settlement, collections.",
        Role.AGENT: "Applications on applicants' behalf, and reminders of overdue instalments.",
        Role.BORROWER: "The applicant whose email the token names: their own rows only.",
    },
)

graphql_enum(
    DomainErrorCode,
    "Stable, machine-readable codes of expected failures. Codes are added, never renamed.",
    {
        DomainErrorCode.VALIDATION_FAILED: "The input is malformed: see `field` and `message`.",
        DomainErrorCode.NOT_FOUND: "The referenced object does not exist.",
        DomainErrorCode.PRODUCT_INACTIVE: "The loan product is no longer offered.",
        DomainErrorCode.AMOUNT_OUT_OF_RANGE: "The amount is outside the product's bounds.",
        DomainErrorCode.TERM_OUT_OF_RANGE: "The term is outside the product's bounds.",
        DomainErrorCode.DUPLICATE_OPEN_APPLICATION: (
            "The applicant already has an open (SUBMITTED or IN_REVIEW) application."
        ),
        DomainErrorCode.INVALID_TRANSITION: (
            "The object's current status does not allow this action; see availableActions."
        ),
        DomainErrorCode.OVERPAYMENT: (
            "The payment exceeds what is left to pay; the message gives the payoff amount."
        ),
        DomainErrorCode.PAYMENT_DATE_INVALID: (
            "The payment date is before disbursement or in the future."
        ),
        DomainErrorCode.ALREADY_REVERSED: "The payment was already reversed.",
        DomainErrorCode.STALE_VERSION: (
            "expectedVersion is not the object's current version: re-read it and retry."
        ),
        DomainErrorCode.IDEMPOTENCY_KEY_REUSED: (
            "This idempotency key was used with a different input."
        ),
        DomainErrorCode.DUPLICATE_PAYMENT_REFERENCE: (
            "A payment with this external reference is already recorded on the loan."
        ),
        DomainErrorCode.POLICY_VIOLATION: (
            "The product's policy refuses this: an assessment it requires is missing, or the "
            "score is below its threshold (the message says which)."
        ),
        DomainErrorCode.NOT_OVERDUE: "The instalment is not overdue today.",
        DomainErrorCode.REMINDER_TOO_SOON: (
            "A reminder on this instalment and channel was already requested today (UTC)."
        ),
        DomainErrorCode.SETTLEMENT_AMOUNT_MISMATCH: (
            "The amount is not what settles the loan on that date; the message gives it."
        ),
        DomainErrorCode.FORBIDDEN: (
            "Your role may not do this with these values: a borrower applies for themselves."
        ),
    },
)

graphql_enum(
    ApplicationStatus,
    "Where a loan application stands. APPROVED, REJECTED and WITHDRAWN are final.",
    {
        ApplicationStatus.SUBMITTED: "Received, not yet decided.",
        ApplicationStatus.IN_REVIEW: "Referred for manual review.",
        ApplicationStatus.APPROVED: "Approved; a loan exists with the approved terms.",
        ApplicationStatus.REJECTED: "Rejected.",
        ApplicationStatus.WITHDRAWN: "Withdrawn at the applicant's request.",
    },
)

graphql_enum(
    ApplicationAction,
    "Something that can be done to an application, as listed by availableActions.",
    {
        ApplicationAction.APPROVE: "decideApplication with outcome APPROVED.",
        ApplicationAction.REJECT: "decideApplication with outcome REJECTED.",
        ApplicationAction.REFER: "decideApplication with outcome REFERRED (to manual review).",
        ApplicationAction.WITHDRAW: "withdrawApplication.",
    },
)

graphql_enum(
    DecisionOutcome,
    "The outcome of a decision on an application.",
    {
        DecisionOutcome.APPROVED: "Approved: the application becomes APPROVED; a loan is created.",
        DecisionOutcome.REJECTED: "Rejected: the application becomes REJECTED.",
        DecisionOutcome.REFERRED: "Referred to manual review: the application becomes IN_REVIEW.",
    },
)

graphql_enum(
    LoanStatus,
    "Where a loan stands.",
    {
        LoanStatus.APPROVED: "Approved, not yet disbursed.",
        LoanStatus.ACTIVE: "Disbursed and being repaid.",
        LoanStatus.PAID_OFF: "Nothing left to pay.",
        LoanStatus.WRITTEN_OFF: "Written off as uncollectable.",
        LoanStatus.CANCELLED: "Cancelled before disbursement.",
    },
)

graphql_enum(
    LoanAction,
    "Something that can be done to a loan, as listed by availableActions.",
    {
        LoanAction.DISBURSE: "disburseLoan: pay the loan out and book its schedule.",
        LoanAction.RECORD_PAYMENT: "recordPayment.",
        LoanAction.REVERSE_PAYMENT: "reversePayment on one of the loan's payments.",
        LoanAction.SETTLE: "settleLoan: repay everything early, less the interest not accrued.",
        LoanAction.CANCEL: "cancelLoan: it will not be paid out.",
        LoanAction.WRITE_OFF: "writeOffLoan: what is left is deemed uncollectable.",
    },
)

graphql_enum(
    ReminderChannel,
    "How a borrower is reminded.",
    {
        ReminderChannel.SMS: "A text message.",
        ReminderChannel.EMAIL: "An email.",
        ReminderChannel.PHONE: "A phone call.",
        ReminderChannel.LETTER: "A letter.",
    },
)

graphql_enum(
    ReminderStatus,
    "Where a reminder stands.",
    {
        ReminderStatus.QUEUED: "Requested; the delivering service has not reported back yet.",
        ReminderStatus.DELIVERED: "Delivered, as the delivering service reported.",
        ReminderStatus.FAILED: "Not delivered, as the delivering service reported (see detail).",
    },
)

graphql_enum(
    InstallmentStatus,
    "Where an instalment stands on a given date.",
    {
        InstallmentStatus.UPCOMING: "Not yet due and nothing paid.",
        InstallmentStatus.DUE: "Due on that very date and not fully paid.",
        InstallmentStatus.PARTIALLY_PAID: "Partly paid and not yet due.",
        InstallmentStatus.PAID: "Nothing outstanding.",
        InstallmentStatus.OVERDUE: "Past its due date with something outstanding.",
    },
)

graphql_enum(
    DecisionGrouping,
    "What `decisionStats` groups decisions by.",
    {
        DecisionGrouping.PRODUCT: "The product applied for.",
        DecisionGrouping.MODEL: "The model that scored the decision (`name@version`).",
        DecisionGrouping.SCORE_BAND: "The band of `scoreBands` the score falls in.",
        DecisionGrouping.OUTCOME: "The decision's outcome.",
    },
)

graphql_enum(
    DelinquencyBucket,
    "How far behind a loan is, by days past due of its oldest overdue instalment.",
    {
        DelinquencyBucket.CURRENT: "Nothing overdue.",
        DelinquencyBucket.DPD_1_30: "1 to 30 days past due.",
        DelinquencyBucket.DPD_31_60: "31 to 60 days past due.",
        DelinquencyBucket.DPD_61_90: "61 to 90 days past due.",
        DelinquencyBucket.DPD_91_PLUS: "91 days or more past due.",
    },
)

graphql_enum(
    AmortizationMethod,
    "How each instalment splits into principal and interest.",
    {
        AmortizationMethod.ANNUITY: "Equal instalments; the principal part grows over time.",
        AmortizationMethod.EQUAL_PRINCIPAL: "Equal principal parts; instalments shrink over time.",
    },
)

graphql_enum(
    RepaymentFrequency,
    "How often instalments fall due.",
    {
        RepaymentFrequency.MONTHLY: "Monthly, on the same day of the month (clamped to its end).",
        RepaymentFrequency.BIWEEKLY: "Every 14 days.",
        RepaymentFrequency.WEEKLY: "Every 7 days.",
    },
)

graphql_enum(
    DayCount,
    "How a period's interest is counted.",
    {
        DayCount.THIRTY_360: "Every period is an equal fraction of the year.",
        DayCount.ACTUAL_365: "Actual days in the period over 365.",
    },
)


@strawberry.enum(description="Sort direction.")
class OrderDirection(enum.Enum):
    ASC = strawberry.enum_value("ASC", description="Smallest or oldest first.")
    DESC = strawberry.enum_value("DESC", description="Largest or newest first.")
