"""Lifecycles of applications and loans: the transition tables that mutations enforce."""

from __future__ import annotations

import enum

from lending.errors import DomainError, ErrorCode


class ApplicationStatus(enum.Enum):
    """Where a loan application stands."""

    SUBMITTED = "SUBMITTED"
    IN_REVIEW = "IN_REVIEW"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    WITHDRAWN = "WITHDRAWN"


class ApplicationAction(enum.Enum):
    """What can be done to an application."""

    APPROVE = "APPROVE"
    REJECT = "REJECT"
    REFER = "REFER"
    WITHDRAW = "WITHDRAW"


class DecisionOutcome(enum.Enum):
    """The outcome an underwriter or agent records on an application."""

    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    REFERRED = "REFERRED"


class LoanStatus(enum.Enum):
    """Where a loan stands."""

    APPROVED = "APPROVED"
    ACTIVE = "ACTIVE"
    PAID_OFF = "PAID_OFF"
    WRITTEN_OFF = "WRITTEN_OFF"
    CANCELLED = "CANCELLED"


class LoanAction(enum.Enum):
    """What can be done to a loan."""

    DISBURSE = "DISBURSE"
    RECORD_PAYMENT = "RECORD_PAYMENT"
    REVERSE_PAYMENT = "REVERSE_PAYMENT"
    SETTLE = "SETTLE"
    CANCEL = "CANCEL"
    WRITE_OFF = "WRITE_OFF"


class ReminderChannel(enum.Enum):
    """How a borrower is reminded of an overdue instalment."""

    SMS = "SMS"
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    LETTER = "LETTER"


class ReminderStatus(enum.Enum):
    """Where a reminder stands: queued until the delivering service reports back."""

    QUEUED = "QUEUED"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


OPEN_APPLICATION_STATUSES = frozenset({ApplicationStatus.SUBMITTED, ApplicationStatus.IN_REVIEW})

# (from status, action) -> to status; anything absent is an invalid transition.
APPLICATION_TRANSITIONS: dict[tuple[ApplicationStatus, ApplicationAction], ApplicationStatus] = {
    (ApplicationStatus.SUBMITTED, ApplicationAction.REFER): ApplicationStatus.IN_REVIEW,
    (ApplicationStatus.SUBMITTED, ApplicationAction.APPROVE): ApplicationStatus.APPROVED,
    (ApplicationStatus.SUBMITTED, ApplicationAction.REJECT): ApplicationStatus.REJECTED,
    (ApplicationStatus.SUBMITTED, ApplicationAction.WITHDRAW): ApplicationStatus.WITHDRAWN,
    (ApplicationStatus.IN_REVIEW, ApplicationAction.APPROVE): ApplicationStatus.APPROVED,
    (ApplicationStatus.IN_REVIEW, ApplicationAction.REJECT): ApplicationStatus.REJECTED,
    (ApplicationStatus.IN_REVIEW, ApplicationAction.WITHDRAW): ApplicationStatus.WITHDRAWN,
}

ACTION_FOR_OUTCOME = {
    DecisionOutcome.APPROVED: ApplicationAction.APPROVE,
    DecisionOutcome.REJECTED: ApplicationAction.REJECT,
    DecisionOutcome.REFERRED: ApplicationAction.REFER,
}


def available_actions(status: ApplicationStatus) -> list[ApplicationAction]:
    """Actions allowed from ``status``, in a stable order."""
    return [action for action in ApplicationAction if (status, action) in APPLICATION_TRANSITIONS]


def next_status(status: ApplicationStatus, action: ApplicationAction) -> ApplicationStatus:
    """The status ``action`` leads to from ``status``, or INVALID_TRANSITION."""
    try:
        return APPLICATION_TRANSITIONS[(status, action)]
    except KeyError:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION,
            f"Cannot {action.value.lower()} an application that is {status.value}.",
        ) from None


def most_decisions() -> int:
    """The most decisions one application can receive: its longest path of decided steps.

    The transition table has no cycle, so the longest path from SUBMITTED is finite.
    """
    decided = set(ACTION_FOR_OUTCOME.values())

    def longest(status: ApplicationStatus) -> int:
        steps = [
            (1 if action in decided else 0) + longest(target)
            for (source, action), target in APPLICATION_TRANSITIONS.items()
            if source is status
        ]
        return max(steps, default=0)

    return longest(ApplicationStatus.SUBMITTED)


MAX_DECISIONS = most_decisions()


def statuses_allowing(action: ApplicationAction) -> frozenset[ApplicationStatus]:
    """Every status from which ``action`` is allowed."""
    return frozenset(s for (s, a) in APPLICATION_TRANSITIONS if a is action)


# (from status, action) -> to status. Recording or reversing a payment keeps a loan ACTIVE;
# whether it ends PAID_OFF depends on the amounts, which lending.repayment decides.
LOAN_TRANSITIONS: dict[tuple[LoanStatus, LoanAction], LoanStatus] = {
    (LoanStatus.APPROVED, LoanAction.DISBURSE): LoanStatus.ACTIVE,
    (LoanStatus.APPROVED, LoanAction.CANCEL): LoanStatus.CANCELLED,
    (LoanStatus.ACTIVE, LoanAction.RECORD_PAYMENT): LoanStatus.ACTIVE,
    (LoanStatus.ACTIVE, LoanAction.REVERSE_PAYMENT): LoanStatus.ACTIVE,
    (LoanStatus.ACTIVE, LoanAction.SETTLE): LoanStatus.PAID_OFF,
    (LoanStatus.ACTIVE, LoanAction.WRITE_OFF): LoanStatus.WRITTEN_OFF,
    (LoanStatus.PAID_OFF, LoanAction.REVERSE_PAYMENT): LoanStatus.ACTIVE,
}


def available_loan_actions(status: LoanStatus) -> list[LoanAction]:
    """Loan actions allowed from ``status``, in a stable order."""
    return [action for action in LoanAction if (status, action) in LOAN_TRANSITIONS]


def next_loan_status(status: LoanStatus, action: LoanAction) -> LoanStatus:
    """The status ``action`` leads to from ``status``, or INVALID_TRANSITION."""
    try:
        return LOAN_TRANSITIONS[(status, action)]
    except KeyError:
        verb = action.value.lower().replace("_", " ")
        raise DomainError(
            ErrorCode.INVALID_TRANSITION, f"Cannot {verb} on a loan that is {status.value}."
        ) from None


# Past this many reminders an instalment is for a person (or a write-off), not for more
# messages; it also bounds Installment.reminders.
MAX_REMINDERS = 100

# A reminder is queued, then delivered or failed, once: the only transitions.
REMINDER_TRANSITIONS: dict[ReminderStatus, frozenset[ReminderStatus]] = {
    ReminderStatus.QUEUED: frozenset({ReminderStatus.DELIVERED, ReminderStatus.FAILED}),
    ReminderStatus.DELIVERED: frozenset(),
    ReminderStatus.FAILED: frozenset(),
}


def check_reminder_report(status: ReminderStatus, outcome: ReminderStatus) -> None:
    """INVALID_TRANSITION unless a reminder in ``status`` may become ``outcome``."""
    if outcome not in REMINDER_TRANSITIONS[status]:
        raise DomainError(
            ErrorCode.INVALID_TRANSITION,
            f"A reminder that is {status.value} cannot be reported {outcome.value}.",
            "outcome",
        )
