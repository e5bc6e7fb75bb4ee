"""The application transition table, exhaustively."""

from __future__ import annotations

import pytest

from lending.errors import DomainError, ErrorCode
from lending.states import (
    ACTION_FOR_OUTCOME,
    ApplicationAction,
    ApplicationStatus,
    DecisionOutcome,
    LoanAction,
    LoanStatus,
    available_actions,
    available_loan_actions,
    next_loan_status,
    next_status,
)

S, A = ApplicationStatus, ApplicationAction

# The lifecycle of DOMAIN.md, written out independently of the implementation's table.
EXPECTED = {
    (S.SUBMITTED, A.REFER): S.IN_REVIEW,
    (S.SUBMITTED, A.APPROVE): S.APPROVED,
    (S.SUBMITTED, A.REJECT): S.REJECTED,
    (S.SUBMITTED, A.WITHDRAW): S.WITHDRAWN,
    (S.IN_REVIEW, A.APPROVE): S.APPROVED,
    (S.IN_REVIEW, A.REJECT): S.REJECTED,
    (S.IN_REVIEW, A.WITHDRAW): S.WITHDRAWN,
}

ALL_PAIRS = [(status, action) for status in S for action in A]


@pytest.mark.parametrize(("status", "action"), ALL_PAIRS)
def test_every_status_and_action(status, action):
    if (status, action) in EXPECTED:
        assert next_status(status, action) is EXPECTED[(status, action)]
    else:
        with pytest.raises(DomainError) as raised:
            next_status(status, action)
        assert raised.value.code is ErrorCode.INVALID_TRANSITION
        assert status.value in raised.value.message


@pytest.mark.parametrize("status", list(S))
def test_available_actions_are_exactly_the_allowed_transitions(status):
    assert set(available_actions(status)) == {a for (s, a) in EXPECTED if s is status}


@pytest.mark.parametrize("status", [S.APPROVED, S.REJECTED, S.WITHDRAWN])
def test_final_statuses_allow_nothing(status):
    assert available_actions(status) == []


def test_each_outcome_maps_to_its_action():
    assert ACTION_FOR_OUTCOME == {
        DecisionOutcome.APPROVED: A.APPROVE,
        DecisionOutcome.REJECTED: A.REJECT,
        DecisionOutcome.REFERRED: A.REFER,
    }


def test_referring_twice_is_invalid():
    with pytest.raises(DomainError):
        next_status(S.IN_REVIEW, A.REFER)


L, LA = LoanStatus, LoanAction
LOAN_EXPECTED = {
    (L.APPROVED, LA.DISBURSE): L.ACTIVE,
    (L.APPROVED, LA.CANCEL): L.CANCELLED,
    (L.ACTIVE, LA.RECORD_PAYMENT): L.ACTIVE,
    (L.ACTIVE, LA.REVERSE_PAYMENT): L.ACTIVE,
    (L.ACTIVE, LA.SETTLE): L.PAID_OFF,
    (L.ACTIVE, LA.WRITE_OFF): L.WRITTEN_OFF,
    (L.PAID_OFF, LA.REVERSE_PAYMENT): L.ACTIVE,
}


@pytest.mark.parametrize(("status", "action"), [(s, a) for s in L for a in LA])
def test_every_loan_status_and_action(status, action):
    if (status, action) in LOAN_EXPECTED:
        assert next_loan_status(status, action) is LOAN_EXPECTED[(status, action)]
        assert action in available_loan_actions(status)
    else:
        with pytest.raises(DomainError) as raised:
            next_loan_status(status, action)
        assert raised.value.code is ErrorCode.INVALID_TRANSITION
        assert action not in available_loan_actions(status)
