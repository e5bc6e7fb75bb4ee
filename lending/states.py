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


def statuses_allowing(action: ApplicationAction) -> frozenset[ApplicationStatus]:
    """Every status from which ``action`` is allowed."""
    return frozenset(s for (s, a) in APPLICATION_TRANSITIONS if a is action)
