"""Every mutation with what it acts on: its setup (data committed through the services, and
the input that acts on it), its input type and a payload selection reaching past the objects'
own rows. Dry runs and compiled payloads are both tested over this catalogue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from graph.ids import to_global_id
from lending.clock import today
from lending.states import ReminderChannel
from tests.dbfixtures import gql
from tests.factories import TESTER, create_application, create_loan, pay

DAY = today()
OBJECTS = {
    "applyForLoan": "application { id reference status version applicant { email } }",
    "decideApplication": "application { id status version } decision { id outcome } "
    "loan { id status principal }",
    "withdrawApplication": "application { id status withdrawalReason }",
    "disburseLoan": "loan { id status maturityDate payoffAmount schedule { totalPayable "
    "installments { number dueDate totalDue } } }",
    "recordPayment": "payment { id amount allocations { principal interest } } "
    "loan { status payoffAmount }",
    "reversePayment": "payment { id reversed } loan { status payoffAmount }",
    "settleLoan": "payment { id amount settlement allocations { interestWaived } } "
    "loan { status settlementRebate }",
    "cancelLoan": "loan { id status closedReason availableActions }",
    "writeOffLoan": "loan { id status writtenOffAmount }",
    "requestReminder": "reminder { id status channel message installment { number } }",
    "reportReminderDelivery": "reminder { id status detail }",
}
INPUTS = {
    "applyForLoan": "ApplyForLoanInput",
    "decideApplication": "DecideApplicationInput",
    "withdrawApplication": "WithdrawApplicationInput",
    "disburseLoan": "DisburseLoanInput",
    "recordPayment": "RecordPaymentInput",
    "reversePayment": "ReversePaymentInput",
    "settleLoan": "SettleLoanInput",
    "cancelLoan": "CancelLoanInput",
    "writeOffLoan": "WriteOffLoanInput",
    "requestReminder": "RequestReminderInput",
    "reportReminderDelivery": "ReportReminderDeliveryInput",
}
# Values that differ between two runs of one input: made fresh, or stamped with the time.
VOLATILE = {"id", "reference", "version", "decidedAt", "requestedAt", "recordedAt"}

Setup = Callable[[Any, Any], Awaitable[dict[str, Any]]]


def operation(name: str) -> str:
    return (
        f"mutation($input: {INPUTS[name]}!) {{ {name}(input: $input) {{ "
        f"{OBJECTS[name]} userErrors {{ code field message }} replayed dryRun }} }}"
    )


async def _overdue_loan(engine):
    return await create_loan(engine, disbursed_on=DAY - timedelta(days=45))


async def apply_setup(engine, client) -> dict[str, Any]:
    return {
        "applicant": {"fullName": "Dry Run", "email": "dry.run@example.com"},
        "productCode": "PERSONAL-USD",
        "amount": "5000",
        "termMonths": 12,
    }


async def decide_setup(engine, client) -> dict[str, Any]:
    application = await create_application(engine)
    return {
        "applicationId": to_global_id("LoanApplication", application.id),
        "outcome": "APPROVED",
        "reason": "Income verified.",
    }


async def _withdraw(engine, client) -> dict[str, Any]:
    application = await create_application(engine)
    return {
        "applicationId": to_global_id("LoanApplication", application.id),
        "reason": "Changed my mind.",
    }


async def _disburse(engine, client) -> dict[str, Any]:
    loan = await create_loan(engine)
    return {"loanId": to_global_id("Loan", loan.id), "disbursedOn": DAY.isoformat()}


async def _record(engine, client) -> dict[str, Any]:
    loan = await _overdue_loan(engine)
    return {"loanId": to_global_id("Loan", loan.id), "amount": "300.00", "reference": "B-1"}


async def _reverse(engine, client) -> dict[str, Any]:
    loan = await _overdue_loan(engine)
    paid = await pay(engine, loan.id, "300.00", DAY - timedelta(days=2))
    return {"paymentId": to_global_id("Payment", paid.payment.id), "reason": "Bounced."}


async def _settle(engine, client) -> dict[str, Any]:
    loan = await _overdue_loan(engine)
    loan_id = to_global_id("Loan", loan.id)
    quoted = await gql(
        client,
        "query($id: ID!) { loan(id: $id) { settlementQuote { amount } } }",
        {"id": loan_id},
    )
    amount = quoted["data"]["loan"]["settlementQuote"]["amount"]
    return {"loanId": loan_id, "amount": amount, "reference": "SETTLE-1"}


async def _cancel(engine, client) -> dict[str, Any]:
    loan = await create_loan(engine)
    return {"loanId": to_global_id("Loan", loan.id), "reason": "Not needed any more."}


async def _write_off(engine, client) -> dict[str, Any]:
    loan = await _overdue_loan(engine)
    return {"loanId": to_global_id("Loan", loan.id), "reason": "Collections exhausted."}


async def _overdue_installment(engine) -> int:
    loan = await _overdue_loan(engine)
    async with engine.connect() as connection:
        return int(
            await connection.scalar(
                text("SELECT id FROM installments WHERE loan_id = :l AND number = 1"),
                {"l": loan.id},
            )
        )


async def _remind(engine, client) -> dict[str, Any]:
    installment = await _overdue_installment(engine)
    return {
        "installmentId": to_global_id("Installment", installment),
        "channel": "SMS",
        "message": "Please pay.",
    }


async def _report(engine, client) -> dict[str, Any]:
    from db.session import create_sessionmaker
    from lending.services import reminders as reminder_service

    installment = await _overdue_installment(engine)
    async with create_sessionmaker(engine)() as session, session.begin():
        reminder = await reminder_service.request_reminder(
            session,
            TESTER,
            installment_id=installment,
            channel=ReminderChannel.EMAIL,
            message="Please pay.",
        )
    return {
        "reminderId": to_global_id("Reminder", reminder.id),
        "outcome": "DELIVERED",
        "detail": "Accepted.",
    }


SETUPS: dict[str, Setup] = {
    "applyForLoan": apply_setup,
    "decideApplication": decide_setup,
    "withdrawApplication": _withdraw,
    "disburseLoan": _disburse,
    "recordPayment": _record,
    "reversePayment": _reverse,
    "settleLoan": _settle,
    "cancelLoan": _cancel,
    "writeOffLoan": _write_off,
    "requestReminder": _remind,
    "reportReminderDelivery": _report,
}


def stable(value: Any) -> Any:
    """A payload without what differs between two runs of one input."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value
