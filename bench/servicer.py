"""Servicing the loans: each one's schedule, the payments a drawn behaviour makes, allocations."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from bench.book import LoanPlan
from bench.columns import Row
from bench.distributions import (
    BEHAVIOURS,
    BOUNCED_SHARE,
    CUTOFF,
    DELINQUENT_BANDS,
    DIRECT_DEBIT,
    REFERENCE_DATE,
    SERVICERS,
    Behaviour,
    Picker,
    random_stream,
    time_on,
)
from lending.allocation import InstallmentDue, PaymentIn, allocate
from lending.allocation import settled_on as settled_on_of
from lending.delinquency import bucket_for
from lending.money import round_money
from lending.repayment import loan_schedule
from lending.schedule import ScheduledInstallment
from lending.states import LoanStatus


@dataclass(slots=True)
class PaymentPlan:
    amount: Decimal
    received_on: date
    recorded_at: datetime
    recorded_by: str
    reference: str | None
    # Index of the instalment this payment settles exactly (-1: not exactly one).
    settles: int = -1
    reversed_at: datetime | None = None
    id: int = 0


@dataclass
class Batch:
    """The rows of one batch of loans, in dependency order."""

    loans: list[Row] = field(default_factory=list)
    installments: list[Row] = field(default_factory=list)
    payments: list[Row] = field(default_factory=list)
    payment_allocations: list[Row] = field(default_factory=list)


# Days before the due date an on-time payer pays (mostly on the day).
_EARLY_DAYS = (0, 0, 0, 0, 0, 0, 1, 2, 3)
_ZERO = Decimal(0)


class Servicer:
    """Books each disbursed loan's schedule and repays it according to a drawn behaviour.

    Schedules come from ``loan_schedule`` and allocations from ``allocate``, as the service
    books them (on-time loans get the allocations ``allocate`` would give without calling it).
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.behaviours = Picker(BEHAVIOURS)
        self.bands = Picker(DELINQUENT_BANDS)
        self.installment_id = 0
        self.payment_id = 0
        self.allocation_id = 0
        # Mix of what was generated, for the summary.
        self.mix: dict[str, int] = {}
        self.allocated_directly = 0
        self.allocated_by_replay = 0

    def _count(self, key: str) -> None:
        self.mix[key] = self.mix.get(key, 0) + 1

    def batch(self, index: int, loans: Sequence[LoanPlan]) -> Batch:
        """Rows of ``loans`` (batch ``index``: each batch has a random stream of its own)."""
        rng = random_stream(self.seed, "servicing", index)
        out = Batch()
        for loan in loans:
            out.loans.append(self._loan(rng, loan, out))
        return out

    def _loan(self, rng: random.Random, loan: LoanPlan, out: Batch) -> Row:
        head = (
            loan.id,
            loan.reference,
            loan.application.id,
            loan.application.person.id,
            loan.principal,
            loan.currency,
            loan.annual_interest_rate,
            loan.term_months,
            loan.amortization.value,
            loan.frequency.value,
            loan.day_count.value,
        )
        if loan.disbursed_on is None:
            self._count("loan:APPROVED")
            return (*head, LoanStatus.APPROVED.value, 1, loan.approved_at, None, None,
                    loan.approved_at, Decimal(0), Decimal(0))  # fmt: skip
        schedule = loan_schedule(loan, loan.disbursed_on, None)
        rows = schedule.installments
        first_id = self.installment_id + 1
        self.installment_id += len(rows)
        loan_id = loan.id
        disbursed_at = min(
            max(time_on(loan.disbursed_on, rng, 9, 17), loan.approved_at + timedelta(minutes=10)),
            CUTOFF,
        )
        payments = self._payments(rng, loan, rows, schedule.total_payable)
        # Ids and recorded_at follow the order allocate replays payments in.
        payments.sort(key=lambda p: (p.received_on, p.recorded_at))
        previous: datetime | None = None
        for payment in payments:
            if previous is not None and payment.recorded_at <= previous:
                payment.recorded_at = previous + timedelta(seconds=1)
            previous = payment.recorded_at
            self.payment_id += 1
            payment.id = self.payment_id
        updated_at = disbursed_at
        for p in payments:
            out.payments.append(
                (
                    p.id,
                    loan_id,
                    p.reference,
                    p.amount,
                    p.received_on,
                    p.recorded_by,
                    p.recorded_at,
                    p.reversed_at,
                    None if p.reversed_at is None else p.recorded_by,
                    None if p.reversed_at is None else "Cheque bounced.",
                )
            )
            updated_at = max(updated_at, p.reversed_at or p.recorded_at)
        live = [p for p in payments if p.reversed_at is None]
        allocated = len(out.payment_allocations)
        paid_off, days_past_due, settled = self._allocate(loan_id, first_id, rows, live, out)
        mine = out.payment_allocations[allocated:]
        principal_paid = sum((a[5] for a in mine), Decimal(0))
        interest_paid = sum((a[6] for a in mine), Decimal(0))
        out.installments.extend(
            (first_id + n, loan_id, r.number, r.due_date, r.principal, r.interest, r.balance_after,
             settled[n])
            for n, r in enumerate(rows)
        )  # fmt: skip
        status = LoanStatus.PAID_OFF if paid_off else LoanStatus.ACTIVE
        self._count(f"loan:{status.value}")
        if not paid_off:
            self._count(f"bucket:{bucket_for(days_past_due).value}")
        reversals = len(payments) - len(live)
        version = 2 + len(payments) + reversals
        return (*head, status.value, version, loan.approved_at, loan.disbursed_on,
                schedule.maturity_date, updated_at, principal_paid, interest_paid)  # fmt: skip

    def _allocate(
        self,
        loan_id: int,
        first_id: int,
        rows: Sequence[ScheduledInstallment],
        live: Sequence[PaymentPlan],
        out: Batch,
    ) -> tuple[bool, int, list[date | None]]:
        """Allocation rows of the live payments; (paid off, days past due on the reference date,
        the day each instalment was settled).

        When the live payments, in replay order, settle instalments 1, 2, 3, ... exactly one
        each, ``allocate`` gives one allocation per payment (the instalment's interest and
        principal), so those are written directly; any other loan is replayed by ``allocate``.
        """
        direct = all(p.settles == n for n, p in enumerate(live)) and all(
            rows[n].total > 0 for n in range(len(live))
        )
        allocations = out.payment_allocations
        if direct:
            self.allocated_directly += 1
            for p in live:
                r = rows[p.settles]
                self.allocation_id += 1
                allocations.append(
                    (
                        self.allocation_id,
                        loan_id,
                        p.id,
                        first_id + p.settles,
                        p.received_on,
                        r.principal,
                        r.interest,
                    )
                )
            settled_on = [p.received_on for p in live] + [
                settled_on_of(r.due_date, r.total, r.total, None) for r in rows[len(live) :]
            ]
            if len(live) == len(rows):
                return True, 0, settled_on
            oldest = rows[len(live)].due_date
            return False, max(0, (REFERENCE_DATE - oldest).days), settled_on
        self.allocated_by_replay += 1
        result = allocate(
            [InstallmentDue(r.number, r.due_date, r.principal, r.interest) for r in rows],
            [PaymentIn(p.id, p.amount, p.received_on, p.recorded_at) for p in live],
        )
        if result.unallocated:
            raise AssertionError(f"loan {loan_id}: {result.unallocated} left unallocated")
        received = {p.id: p.received_on for p in live}
        for a in result.allocations:
            self.allocation_id += 1
            allocations.append(
                (
                    self.allocation_id,
                    loan_id,
                    a.payment_key,
                    first_id + a.installment_number - 1,
                    received[a.payment_key],  # type: ignore[index]
                    a.principal,
                    a.interest,
                )
            )
        settled_on = [b.settled_on for b in result.balances]
        unpaid = [b for b in result.balances if b.outstanding > 0]
        if not unpaid:
            return True, 0, settled_on
        return False, max(0, (REFERENCE_DATE - unpaid[0].due_date).days), settled_on

    def _payments(
        self,
        rng: random.Random,
        loan: LoanPlan,
        rows: Sequence[ScheduledInstallment],
        total_payable: Decimal,
    ) -> list[PaymentPlan]:
        """The payments received on a loan by the reference date, by a drawn behaviour."""
        due = [r for r in rows if r.due_date <= REFERENCE_DATE]
        behaviour: str = self.behaviours(rng)
        stop = len(due)
        if behaviour == Behaviour.DELINQUENT:
            low, high = self.bands(rng)
            candidates = [
                n for n, r in enumerate(due) if low <= (REFERENCE_DATE - r.due_date).days <= high
            ]
            if candidates:
                stop = rng.choice(candidates)
            else:
                behaviour = Behaviour.ON_TIME
        if behaviour == Behaviour.EARLY_PAYOFF:
            if len(due) >= 2:
                stop = rng.randint(1, len(due) - 1)
            else:
                behaviour = Behaviour.ON_TIME
        self._count(f"behaviour:{behaviour}")
        payments: list[PaymentPlan] = []
        servicer = rng.choice(SERVICERS)
        if behaviour in (Behaviour.ON_TIME, Behaviour.DELINQUENT, Behaviour.EARLY_PAYOFF):
            debit = rng.random() < 0.7
            for n, r in enumerate(due[:stop]):
                if debit:
                    on = r.due_date
                    at = datetime(on.year, on.month, on.day, 5, 30, tzinfo=UTC)
                    reference = f"DD-{n + 1:03d}"
                    payments.append(PaymentPlan(r.total, on, at, DIRECT_DEBIT, reference, n))
                else:
                    on = r.due_date - timedelta(days=rng.choice(_EARLY_DAYS))
                    payments.append(self._transfer(rng, r.total, on, servicer, n))
        elif behaviour == Behaviour.LATE:
            base = rng.randint(2, 20)
            for n, r in enumerate(due):
                on = r.due_date + timedelta(days=max(1, base + rng.randint(-2, 6)))
                if on > REFERENCE_DATE:
                    break
                payments.append(self._transfer(rng, r.total, on, servicer, n))
        elif behaviour == Behaviour.ROUND_UP:
            step = Decimal(loan.product.profile.round_to)
            left = total_payable
            for n, r in enumerate(due):
                amount = min(-(-r.total // step) * step, left)
                amount = round_money(amount, loan.currency)
                if amount <= 0:
                    break
                left -= amount
                payments.append(self._transfer(rng, amount, r.due_date, servicer, -1, n))
        if behaviour == Behaviour.DELINQUENT and rng.random() < 0.45:
            # A part payment after the missed instalment fell due: it stays overdue.
            missed = due[stop]
            part = round_money(missed.total * Decimal(rng.randint(15, 85)) / 100, loan.currency)
            late = rng.randint(1, (REFERENCE_DATE - missed.due_date).days)
            if part > 0:
                on = missed.due_date + timedelta(days=late)
                payments.append(self._transfer(rng, part, on, servicer, -1, len(payments)))
        if behaviour == Behaviour.EARLY_PAYOFF:
            rest = total_payable - sum((p.amount for p in payments), _ZERO)
            on = min(due[stop - 1].due_date + timedelta(days=rng.randint(3, 25)), REFERENCE_DATE)
            payments.append(PaymentPlan(rest, on, time_on(on, rng, 9, 17), servicer, "PAYOFF", -1))
        if payments and rng.random() < BOUNCED_SHARE:
            self._bounce(rng, loan, payments, total_payable, servicer)
        return payments

    @staticmethod
    def _transfer(
        rng: random.Random,
        amount: Decimal,
        on: date,
        servicer: str,
        settles: int,
        number: int | None = None,
    ) -> PaymentPlan:
        """A payment keyed in by a servicer (a bank transfer, or cash with no reference)."""
        sequence = settles + 1 if number is None else number + 1
        reference = None if rng.random() < 0.2 else f"TRF-{sequence:03d}"
        return PaymentPlan(amount, on, time_on(on, rng, 9, 17), servicer, reference, settles)

    def _bounce(
        self,
        rng: random.Random,
        loan: LoanPlan,
        payments: list[PaymentPlan],
        total_payable: Decimal,
        servicer: str,
    ) -> None:
        """A cheque for an instalment, paid in days before it fell due, that bounced.

        It is recorded, then reversed before the instalment is paid again, with no other
        payment recorded in between, and never exceeds what was left to pay: the service would
        have accepted every step.
        """
        assert loan.disbursed_on is not None
        settled = [p for p in payments if p.settles >= 0]
        if not settled:
            return
        paid = rng.choice(settled)
        on = paid.received_on - timedelta(days=rng.randint(5, 10))
        if on < loan.disbursed_on:
            return
        at = time_on(on, rng, 9, 17)
        reversed_at = time_on(on + timedelta(days=rng.randint(2, 4)), rng, 9, 17)
        if any(at <= p.recorded_at <= reversed_at for p in payments):
            return
        before = sum((p.amount for p in payments if p.recorded_at < at), _ZERO)
        if paid.amount > total_payable - before:
            return
        self._count("payment:reversed (bounced cheque)")
        reference = f"CHQ-{rng.randint(100000, 999999)}"
        payments.append(PaymentPlan(paid.amount, on, at, servicer, reference, -1, reversed_at))
