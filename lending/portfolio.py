"""Portfolio indicators on a date: where each loan stood, and the figures of a currency's loans.

The definitions (DOMAIN.md, "Portfolio indicators"), for a date D:

- A loan's state on D: CANCELLED or WRITTEN_OFF once closed so on or before D; APPROVED until
  disbursed; then PAID_OFF when payments received by D repaid all its principal (an early
  settlement does), else ACTIVE. Loans approved after D are not in the portfolio.
- Outstanding principal: principal disbursed less principal paid by payments received on or
  before D; counted for ACTIVE loans only (0 once paid off, settled or written off).
- Overdue amount and days past due: as ``lending.delinquency`` has them on D.
- PAR-N: outstanding principal of the ACTIVE loans more than N days past due over all
  outstanding principal, HALF_EVEN to 4 places (0 when nothing is outstanding).
- Flows: disbursed by D; collected (principal, interest) by payments received by D; written
  off on or before D, at the principal outstanding then. Reversed payments count nowhere: a
  reversal corrects the record, so every day is assessed on the corrected one.

The API answers with one SQL statement (db.repositories.portfolio) that sums loans per currency,
state, bucket and PAR class, and ``fold`` makes the indicators of those groups. ``position`` is
each loan by the rules, as a group of one; folded, they give what the statement must, and a
differential test holds the two equal. Amounts are never added across currencies.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction

from lending.allocation import InstallmentDue
from lending.delinquency import BUCKET_BOUNDS, DelinquencyBucket, bucket_for, delinquency
from lending.money import round_money
from lending.repayment import PaidPart, balances_as_of
from lending.states import LoanStatus

_ZERO = Decimal(0)

# The PAR thresholds reported: a loan counts in PAR-N when more than N days past due.
PAR_DAYS = (30, 60, 90)
RATIO_PLACES = 4


@dataclass(frozen=True)
class LoanFacts:
    """What the indicators need of a loan besides its instalments and payments."""

    currency: str
    principal: Decimal
    status: LoanStatus  # as stored now
    approved_on: date
    disbursed_on: date | None
    closed_on: date | None  # when it was cancelled or written off (UTC day)


def state_on(facts: LoanFacts, principal_left: Decimal, as_of: date) -> LoanStatus | None:
    """The loan's state on ``as_of`` (see the module); None before it was approved."""
    if facts.approved_on > as_of:
        return None
    closed = facts.closed_on is not None and facts.closed_on <= as_of
    if closed and facts.status in (LoanStatus.CANCELLED, LoanStatus.WRITTEN_OFF):
        return facts.status
    if facts.disbursed_on is None or facts.disbursed_on > as_of:
        return LoanStatus.APPROVED
    return LoanStatus.PAID_OFF if principal_left <= 0 else LoanStatus.ACTIVE


def position(
    facts: LoanFacts,
    installments: Sequence[InstallmentDue],
    paid: Iterable[PaidPart],
    as_of: date,
) -> PositionGroup | None:
    """The loan on ``as_of`` from its instalments and the parts of its live payments, as a
    group of one; None when it was not approved yet."""
    balances = balances_as_of(installments, paid, as_of)
    principal_paid = sum((b.principal_paid for b in balances), _ZERO)
    interest_paid = sum((b.interest_paid for b in balances), _ZERO)
    left = facts.principal - principal_paid
    state = state_on(facts, left, as_of)
    if state is None:
        return None
    late = delinquency(balances, as_of, facts.currency)
    return PositionGroup(
        currency=facts.currency,
        state=state,
        bucket=bucket_for(late.days_past_due),
        risk=risk_of(late.days_past_due),
        loans=1,
        principal=facts.principal,
        principal_left=left,
        overdue_amount=late.overdue_amount,
        principal_collected=principal_paid,
        interest_collected=interest_paid,
    )


@dataclass(frozen=True)
class PositionGroup:
    """Loans of one currency in the same state, bucket and PAR class on a date, with their sums:
    what the statement returns, and one loan's position (``position``)."""

    currency: str
    state: LoanStatus
    bucket: DelinquencyBucket
    risk: int  # how many of PAR_DAYS (ascending) its days past due are beyond
    loans: int
    principal: Decimal
    principal_left: Decimal
    overdue_amount: Decimal
    principal_collected: Decimal
    interest_collected: Decimal


def risk_of(days_past_due: int) -> int:
    """How many of PAR_DAYS ``days_past_due`` is beyond."""
    return sum(1 for days in PAR_DAYS if days_past_due > days)


@dataclass
class BucketTotals:
    """The ACTIVE loans of one delinquency bucket."""

    loans: int = 0
    outstanding_principal: Decimal = _ZERO
    overdue_amount: Decimal = _ZERO


@dataclass
class CurrencyTotals:
    """A currency's indicators, every state, threshold and bucket present."""

    currency: str
    loans_by_state: dict[LoanStatus, int] = field(default_factory=dict)
    outstanding_principal: Decimal = _ZERO
    overdue_amount: Decimal = _ZERO
    at_risk: dict[int, Decimal] = field(default_factory=dict)  # PAR days -> principal
    buckets: dict[DelinquencyBucket, BucketTotals] = field(default_factory=dict)
    disbursed_loans: int = 0
    disbursed_amount: Decimal = _ZERO
    collected_principal: Decimal = _ZERO
    collected_interest: Decimal = _ZERO
    written_off_loans: int = 0
    written_off_amount: Decimal = _ZERO

    def par(self, days: int) -> Decimal:
        """PAR-``days``: the at-risk share of the outstanding principal."""
        return ratio(self.at_risk.get(days, _ZERO), self.outstanding_principal)


def ratio(part: Decimal, whole: Decimal) -> Decimal:
    """``part / whole`` rounded HALF_EVEN to RATIO_PLACES, computed exactly; 0 when ``whole``
    is 0."""
    if whole == 0:
        return Decimal(0).scaleb(-RATIO_PLACES)
    scaled = Fraction(part) / Fraction(whole) * 10**RATIO_PLACES
    return Decimal(round(scaled)).scaleb(-RATIO_PLACES)  # round() of a Fraction: half to even


def fold(groups: Iterable[PositionGroup]) -> list[CurrencyTotals]:
    """Each currency's indicators from its groups of loan positions, by currency code."""
    found: dict[str, CurrencyTotals] = {}
    for g in groups:
        totals = found.get(g.currency)
        if totals is None:
            totals = found[g.currency] = CurrencyTotals(
                g.currency,
                loans_by_state=dict.fromkeys(LoanStatus, 0),
                at_risk=dict.fromkeys(PAR_DAYS, _ZERO),
                buckets={b: BucketTotals() for b in BUCKET_BOUNDS},
            )
        totals.loans_by_state[g.state] += g.loans
        if g.state not in (LoanStatus.APPROVED, LoanStatus.CANCELLED):
            totals.disbursed_loans += g.loans
            totals.disbursed_amount += g.principal
            totals.collected_principal += g.principal_collected
            totals.collected_interest += g.interest_collected
        if g.state is LoanStatus.WRITTEN_OFF:
            totals.written_off_loans += g.loans
            totals.written_off_amount += g.principal_left
        if g.state is not LoanStatus.ACTIVE:
            continue
        totals.outstanding_principal += g.principal_left
        totals.overdue_amount += g.overdue_amount
        for days in sorted(PAR_DAYS)[: g.risk]:
            totals.at_risk[days] += g.principal_left
        bucket = totals.buckets[g.bucket]
        bucket.loans += g.loans
        bucket.outstanding_principal += g.principal_left
        bucket.overdue_amount += g.overdue_amount
    return [complete(found[code]) for code in sorted(found)]


def complete(totals: CurrencyTotals) -> CurrencyTotals:
    """``totals`` with its amounts in the currency's minor unit."""
    money = totals.currency
    totals.at_risk = {d: round_money(v, money) for d, v in totals.at_risk.items()}
    for bucket in totals.buckets.values():
        bucket.outstanding_principal = round_money(bucket.outstanding_principal, money)
        bucket.overdue_amount = round_money(bucket.overdue_amount, money)
    for name in (
        "outstanding_principal",
        "overdue_amount",
        "disbursed_amount",
        "collected_principal",
        "collected_interest",
        "written_off_amount",
    ):
        setattr(totals, name, round_money(getattr(totals, name), money))
    return totals
