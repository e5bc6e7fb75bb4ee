"""Schedules, instalments, payments and delinquency of disbursed loans."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

from db import models
from db.reads.plan import Column, Computation, IsSet, Money, PageArgs, SumOf, ToMany, ToOne, Total
from db.records import InstallmentRecord
from db.repositories.servicing import OverdueFilter
from graph.compiled.reads import Compute, OldestOverdue, column, derived, private, reads
from graph.context import Info
from graph.loaders import INSTALLMENTS
from graph.relations import in_currency, money, to_many, to_one
from graph.relay import Node, RowView, paginate
from graph.types.calculations import InstallmentCalculation, installment_calculations
from lending import clock
from lending.allocation import InstallmentBalance, InstallmentDue
from lending.delinquency import DelinquencyBucket, InstallmentStatus, installment_status
from lending.delinquency import delinquency as delinquency_of
from lending.money import as_written
from lending.repayment import PaidPart, balances_as_of
from lending.states import ReminderChannel, ReminderStatus

if TYPE_CHECKING:
    from graph.types.loans import Loan

# Where the currency of an instalment's, a payment's or an allocation's amounts is: its loan's.
LOAN_CURRENCY = (ToOne("loans", "loan_id"),)
PRINCIPAL_PAID = Money(Compute(Computation.PRINCIPAL_PAID), LOAN_CURRENCY)
INTEREST_PAID = Money(Compute(Computation.INTEREST_PAID), LOAN_CURRENCY)
OUTSTANDING = Money(Compute(Computation.OUTSTANDING), LOAN_CURRENCY)

AS_OF = "The date to assess on; default today (UTC). Payments received after it are ignored."


def assessed_on(as_of: date | None = None) -> date:
    """The date a field with an optional `asOf` assesses on: today (UTC) by default."""
    return as_of or clock.today()


async def loan_balances(
    info: Info, loan_id: int, as_of: date | None
) -> dict[int, InstallmentBalance]:
    """A loan's instalments with what was paid by ``as_of`` (None: everything recorded)."""
    loaders = info.context.loaders
    key = (loan_id, as_of)
    if key not in loaders.balances:
        installments, allocations = await asyncio.gather(
            loaders.installments_by_loan.load(loan_id), loaders.allocations_by_loan.load(loan_id)
        )
        number_of = {i.id: i.number for i in installments}
        balances = balances_as_of(
            [
                InstallmentDue(i.number, i.due_date, i.principal_due, i.interest_due)
                for i in installments
            ],
            [
                PaidPart(
                    number_of[a.installment_id],
                    a.principal,
                    a.interest,
                    a.received_on,
                    a.interest_waived,
                )
                for a in allocations
            ],
            as_of,
        )
        loaders.balances[key] = {b.number: b for b in balances}
    return loaders.balances[key]


@strawberry.type(description="One instalment of a disbursed loan's schedule.")
class Installment(Node, table="installments"):
    key: strawberry.Private[int] = private("id")
    loan_key: strawberry.Private[int] = private("loan_id")
    number: int = column("number", "Position in the schedule, from 1.")
    due_date: date = column("due_date", "When it falls due.")
    principal_due: Decimal = money(Column("principal_due"), "Principal part.", LOAN_CURRENCY)
    interest_due: Decimal = money(Column("interest_due"), "Interest part.", LOAN_CURRENCY)
    total_due: Decimal = money(
        Total(("principal_due", "interest_due")), "Principal plus interest.", LOAN_CURRENCY
    )
    balance_after: Decimal = money(
        Column("balance_after"),
        "Principal left after this instalment, as scheduled.",
        LOAN_CURRENCY,
    )
    loan: Annotated[Loan, strawberry.lazy("graph.types.loans")] = to_one(
        ToOne("loans", "loan_id"), "The loan this instalment belongs to."
    )
    reminders: list[Reminder] = to_many(
        ToMany("reminders", "id", "installment_id", (("requested_at", False), ("id", False))),
        "Reminders requested on this instalment, oldest first.",
    )

    async def _balance(self, info: Info, as_of: date | None) -> InstallmentBalance:
        return (await loan_balances(info, self.loan_key, as_of))[self.number]

    @strawberry.field(
        description="How its interest and principal were computed, from the loan's terms and "
        "the balance left before it: the numbers its amounts were made from."
    )
    async def calculation(self, info: Info) -> InstallmentCalculation:
        return (await installment_calculations(info, self.loan_key))[self.number]

    @strawberry.field(description="Principal paid so far.", metadata=reads(PRINCIPAL_PAID))
    async def principal_paid(self, info: Info) -> Decimal:
        paid = (await self._balance(info, None)).principal_paid
        return await in_currency(info, self, paid, PRINCIPAL_PAID)

    @strawberry.field(description="Interest paid so far.", metadata=reads(INTEREST_PAID))
    async def interest_paid(self, info: Info) -> Decimal:
        paid = (await self._balance(info, None)).interest_paid
        return await in_currency(info, self, paid, INTEREST_PAID)

    @strawberry.field(
        description="What is still to be paid on this instalment.", metadata=reads(OUTSTANDING)
    )
    async def amount_outstanding(self, info: Info) -> Decimal:
        left = (await self._balance(info, None)).outstanding
        return await in_currency(info, self, left, OUTSTANDING)

    @strawberry.field(
        description="When it was fully paid (received date of the last payment).",
        metadata=reads(Compute(Computation.PAID_ON)),
    )
    async def paid_on(self, info: Info) -> date | None:
        return (await self._balance(info, None)).paid_on

    @strawberry.field(
        description="Where the instalment stands on a date.",
        metadata=reads(Compute(Computation.STATUS, bind=assessed_on)),
    )
    async def status(
        self,
        info: Info,
        as_of: Annotated[date | None, strawberry.argument(description=AS_OF)] = None,
    ) -> InstallmentStatus:
        day = assessed_on(as_of)
        return installment_status(await self._balance(info, day), day)

    @strawberry.field(
        description="Days past due on a date (0 unless overdue).",
        metadata=reads(Compute(Computation.DAYS_PAST_DUE, bind=assessed_on)),
    )
    async def days_past_due(
        self,
        info: Info,
        as_of: Annotated[date | None, strawberry.argument(description=AS_OF)] = None,
    ) -> int:
        day = assessed_on(as_of)
        status = installment_status(await self._balance(info, day), day)
        return (day - self.due_date).days if status is InstallmentStatus.OVERDUE else 0


@strawberry.type(description="A disbursed loan's repayment schedule and its totals.")
class RepaymentSchedule:
    installments: list[Installment] = strawberry.field(
        description="Instalments in order.", metadata=reads(INSTALLMENTS)
    )
    total_principal: Decimal = strawberry.field(
        description="Sum of principal; the loan amount.",
        metadata=reads(Money(SumOf("installments", "id", "loan_id", ("principal_due",)))),
    )
    total_interest: Decimal = strawberry.field(
        description="Sum of scheduled interest.",
        metadata=reads(Money(SumOf("installments", "id", "loan_id", ("interest_due",)))),
    )
    total_payable: Decimal = strawberry.field(
        description="Principal plus interest.",
        metadata=reads(
            Money(SumOf("installments", "id", "loan_id", ("principal_due", "interest_due")))
        ),
    )

    @classmethod
    def from_rows(cls, rows: Sequence[InstallmentRecord], currency: str) -> RepaymentSchedule:
        """The schedule of a loan's instalment rows, in the loan's ``currency``."""
        principal = sum((r.principal_due for r in rows), Decimal(0))
        interest = sum((r.interest_due for r in rows), Decimal(0))
        return cls(
            installments=[Installment.from_row(r) for r in rows],
            total_principal=as_written(principal, currency),
            total_interest=as_written(interest, currency),
            total_payable=as_written(principal + interest, currency),
        )


@strawberry.type(description="Part of a payment applied to one instalment.")
class PaymentAllocation(RowView, table="payment_allocations"):
    installment_key: strawberry.Private[int] = private("installment_id")
    principal: Decimal = money(Column("principal"), "Applied to principal.", LOAN_CURRENCY)
    interest: Decimal = money(Column("interest"), "Applied to interest.", LOAN_CURRENCY)
    amount: Decimal = money(
        Total(("principal", "interest")), "Principal plus interest.", LOAN_CURRENCY
    )
    interest_waived: Decimal = money(
        Column("interest_waived"),
        "Interest an early settlement waived on the instalment (not paid, owed no more); "
        "0 otherwise.",
        LOAN_CURRENCY,
    )
    installment: Installment = to_one(
        ToOne("installments", "installment_id"), "The instalment paid."
    )


@strawberry.type(description="Money received on a loan. Payments are never deleted or edited.")
class Payment(Node, table="payments"):
    key: strawberry.Private[int] = private("id")
    loan_key: strawberry.Private[int] = private("loan_id")
    reference: str | None = column("reference", "External reference, if given.")
    amount: Decimal = money(Column("amount"), "Amount received.", LOAN_CURRENCY)
    received_on: date = column("received_on", "When the money was received.")
    recorded_by: str = column("recorded_by", "Who recorded it.")
    recorded_at: datetime = column("recorded_at", "When it was recorded.")
    reversed: bool = derived(
        IsSet("reversed_at"), "Whether it was reversed (it then counts for nothing)."
    )
    reversed_at: datetime | None = column("reversed_at", "When it was reversed.")
    reversed_by: str | None = column("reversed_by", "Who reversed it.")
    reversed_reason: str | None = column("reversed_reason", "Why it was reversed.")
    settlement: bool = column(
        "settlement", "Whether it settled the loan early (see settleLoan and the loan's rebate)."
    )
    allocations: list[PaymentAllocation] = to_many(
        ToMany("payment_allocations", "id", "payment_id", (("id", False),)),
        "How the payment was applied: oldest instalment first, interest before principal. "
        "Empty once reversed.",
    )
    loan: Annotated[Loan, strawberry.lazy("graph.types.loans")] = to_one(
        ToOne("loans", "loan_id"), "The loan paid."
    )


@strawberry.type(description="How far behind a loan is on a date.")
class Delinquency:
    loan_key: strawberry.Private[int] = private("loan_id")
    oldest_number: strawberry.Private[int | None]
    days_past_due: int = strawberry.field(
        description="Days since the oldest overdue instalment fell due; 0 when none is.",
        metadata=reads(Compute(Computation.LOAN_DAYS_PAST_DUE, from_parent=True)),
    )
    bucket: DelinquencyBucket = strawberry.field(
        description="Days-past-due band.",
        metadata=reads(Compute(Computation.LOAN_BUCKET, from_parent=True)),
    )
    overdue_amount: Decimal = strawberry.field(
        description="Sum outstanding on overdue instalments.",
        metadata=reads(Compute(Computation.LOAN_OVERDUE_AMOUNT, from_parent=True)),
    )

    @strawberry.field(
        description="The oldest instalment overdue, if any.", metadata=reads(OldestOverdue())
    )
    async def oldest_overdue_installment(self, info: Info) -> Installment | None:
        if self.oldest_number is None:
            return None
        rows = await info.context.loaders.installments_by_loan.load(self.loan_key)
        return Installment.from_row(rows[self.oldest_number - 1])


async def loan_delinquency(info: Info, loan_id: int, currency: str, day: date) -> Delinquency:
    """The delinquency of a loan on ``day``."""
    balances = await loan_balances(info, loan_id, day)
    result = delinquency_of(balances.values(), day, currency)
    return Delinquency(
        loan_key=loan_id,
        oldest_number=result.oldest_overdue_installment,
        days_past_due=result.days_past_due,
        bucket=result.bucket,
        overdue_amount=result.overdue_amount,
    )


@strawberry.type(
    description="A reminder on an overdue instalment: QUEUED until the delivering service "
    "reports it DELIVERED or FAILED."
)
class Reminder(Node, table="reminders"):
    key: strawberry.Private[int] = private("id")
    installment_key: strawberry.Private[int] = private("installment_id")
    loan_key: strawberry.Private[int] = private("loan_id")
    channel: ReminderChannel = column("channel", "How the borrower is to be reminded.")
    message: str = column("message", "What to tell the borrower.")
    status: ReminderStatus = column("status", "Where it stands.")
    requested_by: str = column("requested_by", "Who asked for it.")
    requested_at: datetime = column("requested_at", "When it was asked for.")
    delivered_at: datetime | None = column(
        "reported_at",
        "When the delivering service reported back (delivered or failed); null while QUEUED.",
    )
    reported_by: str | None = column("reported_by", "Who reported back.")
    detail: str | None = column("detail", "What the delivering service said (why it failed).")
    installment: Installment = to_one(
        ToOne("installments", "installment_id"), "The overdue instalment."
    )
    loan: Annotated[Loan, strawberry.lazy("graph.types.loans")] = to_one(
        ToOne("loans", "loan_id"), "The loan."
    )


def reminder_page(
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> PageArgs:
    """The checked arguments of a loan's reminders: newest first."""
    return paginate(
        first,
        after,
        last=last,
        before=before,
        sort=models.Reminder.requested_at,
        name="REQUESTED_AT:DESC",
        descending=True,
    )


def payment_page(
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> PageArgs:
    """The checked arguments of a loan's payments: oldest received first."""
    return paginate(
        first,
        after,
        last=last,
        before=before,
        sort=models.Payment.received_on,
        name="RECEIVED_ON:ASC",
    )


def overdue_page(
    as_of: date,
    min_days_past_due: int = 1,
    first: int | None = None,
    after: str | None = None,
    not_reminded_since: date | None = None,
    last: int | None = None,
    before: str | None = None,
) -> PageArgs:
    """The checked arguments of `overdueInstallments`: most overdue first.

    The cursor names the arguments, since they define the list it walks.
    """
    name = f"OVERDUE:{as_of.isoformat()}:{min_days_past_due}"
    if not_reminded_since is not None:  # cursors without it stay as they were
        name += f":{not_reminded_since.isoformat()}"
    return paginate(
        first,
        after,
        last=last,
        before=before,
        sort=models.Installment.due_date,
        name=name,
        filter=OverdueFilter.of(as_of, min_days_past_due, not_reminded_since),
    )
