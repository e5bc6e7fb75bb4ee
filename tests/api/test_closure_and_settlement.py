"""Closing loans: cancellation, write-off, early settlement and its reversal, and their races."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from sqlalchemy import text

from graph.ids import to_global_id
from lending.access import STAFF_ROLES, Role
from lending.clock import today
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency
from tests.dbfixtures import gql, http_client
from tests.factories import create_loan, create_product, pay

DAY = today()
CENT = Decimal("0.01")

LOAN_FIELDS = """id status version closedReason closedAt writtenOffAmount settlementRebate
                 availableActions payoffAmount"""

CANCEL = f"""
mutation Cancel($input: CancelLoanInput!) {{
  cancelLoan(input: $input) {{
    loan {{ {LOAN_FIELDS} }}
    userErrors {{ code field message }}
    replayed
  }}
}}
"""

WRITE_OFF = f"""
mutation WriteOff($input: WriteOffLoanInput!) {{
  writeOffLoan(input: $input) {{
    loan {{ {LOAN_FIELDS} }}
    userErrors {{ code field message }}
    replayed
  }}
}}
"""

PAYMENT_FIELDS = """id amount receivedOn reference settlement reversed
    allocations { installment { number } principal interest interestWaived amount }"""

SETTLE = f"""
mutation Settle($input: SettleLoanInput!) {{
  settleLoan(input: $input) {{
    payment {{ {PAYMENT_FIELDS} }}
    loan {{ {LOAN_FIELDS} }}
    userErrors {{ code field message }}
    replayed
  }}
}}
"""

RECORD = f"""
mutation Record($input: RecordPaymentInput!) {{
  recordPayment(input: $input) {{
    payment {{ {PAYMENT_FIELDS} }}
    loan {{ {LOAN_FIELDS} }}
    userErrors {{ code field message }}
  }}
}}
"""

REVERSE = f"""
mutation Reverse($input: ReversePaymentInput!) {{
  reversePayment(input: $input) {{
    payment {{ {PAYMENT_FIELDS} }}
    loan {{ {LOAN_FIELDS} }}
    userErrors {{ code field message }}
    replayed
  }}
}}
"""

DISBURSE = """
mutation($id: ID!) { disburseLoan(input: {loanId: $id}) { userErrors { code field } } }
"""

INSTALLMENT_FIELDS = """number dueDate principalDue interestDue totalDue principalPaid
                        interestPaid amountOutstanding paidOn status"""

LOAN = f"""
query Loan($id: ID!) {{
  loan(id: $id) {{
    {LOAN_FIELDS} disbursedOn maturityDate outstandingPrincipal dayCount currency
    schedule {{ installments {{ {INSTALLMENT_FIELDS} }} totalPayable }}
    payments(first: 5) {{ totalCount edges {{ node {{ {PAYMENT_FIELDS} }} }} }}
  }}
}}
"""

# Asked apart: Loan.settlementQuote is answered per field (compiled reads do not cover it),
# and a query holding it falls back as a whole.
QUOTE = """
query Quote($id: ID!, $asOf: Date) {
  loan(id: $id) {
    settlementQuote(asOf: $asOf) { amount principal accruedInterest overdue rebate validOn }
  }
}
"""

COUNTS = text(
    "SELECT (SELECT count(*) FROM payments), (SELECT count(*) FROM payment_allocations), "
    "(SELECT count(*) FROM audit_events), (SELECT count(*) FROM idempotency_keys), "
    "(SELECT coalesce(sum(version), 0) FROM loans)"
)


async def row_counts(engine) -> tuple[int, ...]:
    async with engine.connect() as connection:
        return tuple((await connection.execute(COUNTS)).one())


async def loan_row(engine, loan_id: int):
    async with engine.connect() as connection:
        return (
            await connection.execute(
                text(
                    "SELECT status, version, closed_reason, closed_at, written_off_amount, "
                    "settlement_rebate FROM loans WHERE id = :id"
                ),
                {"id": loan_id},
            )
        ).one()


async def ledger_rows(engine, loan_id: int):
    """What the database holds of a loan's money: scheduled, live payments, allocated, waived."""
    async with engine.connect() as connection:
        return (
            await connection.execute(
                text(
                    "SELECT "
                    "(SELECT sum(principal_due + interest_due) FROM installments "
                    " WHERE loan_id = :id) AS scheduled, "
                    "(SELECT coalesce(sum(amount), 0) FROM payments "
                    " WHERE loan_id = :id AND reversed_at IS NULL) AS paid, "
                    "(SELECT coalesce(sum(principal + interest), 0) FROM payment_allocations "
                    " WHERE loan_id = :id) AS allocated, "
                    "(SELECT coalesce(sum(interest_waived), 0) FROM payment_allocations "
                    " WHERE loan_id = :id) AS waived, "
                    "(SELECT count(*) FROM payments WHERE loan_id = :id AND reversed_at IS NULL) "
                    " AS live, "
                    "(SELECT count(*) FROM payments WHERE loan_id = :id AND settlement) "
                    " AS settlements"
                ),
                {"id": loan_id},
            )
        ).one()


def gid(loan) -> str:
    return to_global_id("Loan", loan.id)


def ok(body, name):
    assert "errors" not in body, body
    payload = body["data"][name]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


def errors_of(body, name):
    assert "errors" not in body, body
    return [(e["code"], e["field"]) for e in body["data"][name]["userErrors"]]


def outcome(body, name) -> str:
    assert "errors" not in body, body
    return (body["data"][name]["userErrors"] or [{"code": "OK"}])[0]["code"]


async def read_loan(client, loan, as_of: date | None = None):
    """The loan, with its settlement quote on ``as_of`` (default today)."""
    variables = {"id": gid(loan), "asOf": as_of and as_of.isoformat()}
    body = await gql(client, LOAN, {"id": gid(loan)})
    assert "errors" not in body, body
    quoted = await gql(client, QUOTE, variables)
    assert "errors" not in quoted, quoted
    return body["data"]["loan"] | quoted["data"]["loan"]


@pytest.fixture
async def products(engine):
    await create_product(engine)  # PERSONAL-USD: 12.5 %, annuity, monthly, 30/360
    await create_product(
        engine,
        code="SHORT",
        min_amount=Decimal("100.00"),
        min_term_months=1,
        max_term_months=12,
        annual_interest_rate=Decimal("10.000000"),
    )


async def active_loan(engine, **overrides):
    """An ACTIVE loan disbursed 45 days ago: instalment 1 is overdue, 2 falls due in ~2 weeks."""
    return await create_loan(engine, disbursed_on=DAY - timedelta(days=45), **overrides)


# --- cancellation -----------------------------------------------------------------------------


async def test_cancelling_an_approved_loan(client, engine, products):
    # given an approved loan, not paid out
    loan = await create_loan(engine)
    # when it is cancelled at its current version
    payload = ok(
        await gql(
            client,
            CANCEL,
            {
                "input": {
                    "loanId": gid(loan),
                    "reason": "  The applicant found another lender.  ",
                    "expectedVersion": loan.version,
                }
            },
        ),
        "cancelLoan",
    )
    # then it is CANCELLED for good, with its reason and time
    cancelled = payload["loan"]
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["closedReason"] == "The applicant found another lender."
    assert cancelled["closedAt"] is not None
    assert cancelled["availableActions"] == []
    assert cancelled["version"] == loan.version + 1
    assert (cancelled["writtenOffAmount"], cancelled["payoffAmount"]) == (None, None)
    read = await read_loan(client, loan)
    assert {k: read[k] for k in cancelled} == cancelled
    assert read["schedule"] is None
    assert read["settlementQuote"] is None
    row = await loan_row(engine, loan.id)
    assert (row.status, row.version, row.closed_reason) == (
        "CANCELLED",
        loan.version + 1,
        "The applicant found another lender.",
    )
    assert row.closed_at is not None
    assert row.written_off_amount is None
    async with engine.connect() as connection:
        event = (
            await connection.execute(
                text(
                    "SELECT actor, before, after FROM audit_events WHERE action = 'loan.cancelled'"
                )
            )
        ).one()
    assert event.actor == "admin"
    assert (event.before["status"], event.after["status"]) == ("APPROVED", "CANCELLED")
    # and nothing more can be done to it
    before = await row_counts(engine)
    body = await gql(client, DISBURSE, {"id": gid(loan)})
    assert body["data"]["disburseLoan"]["userErrors"][0]["code"] == "INVALID_TRANSITION"
    body = await gql(client, CANCEL, {"input": {"loanId": gid(loan), "reason": "Again."}})
    assert outcome(body, "cancelLoan") == "INVALID_TRANSITION"
    assert await row_counts(engine) == before


async def test_an_active_loan_cannot_be_cancelled(client, engine, products):
    loan = await active_loan(engine)
    before = await row_counts(engine)
    body = await gql(client, CANCEL, {"input": {"loanId": gid(loan), "reason": "Too late."}})
    assert outcome(body, "cancelLoan") == "INVALID_TRANSITION"
    assert body["data"]["cancelLoan"]["loan"] is None
    assert await row_counts(engine) == before
    assert (await loan_row(engine, loan.id)).status == "ACTIVE"


@pytest.mark.parametrize("mutation", ["cancelLoan", "writeOffLoan"])
@pytest.mark.parametrize("reason", ["", "   ", "x" * 2001])
async def test_a_reason_is_required_to_close_a_loan(client, engine, products, mutation, reason):
    loan = await create_loan(engine) if mutation == "cancelLoan" else await active_loan(engine)
    operation = CANCEL if mutation == "cancelLoan" else WRITE_OFF
    before = await row_counts(engine)
    body = await gql(client, operation, {"input": {"loanId": gid(loan), "reason": reason}})
    assert errors_of(body, mutation) == [("VALIDATION_FAILED", ["input", "reason"])]
    assert await row_counts(engine) == before
    assert (await loan_row(engine, loan.id)).closed_reason is None


@pytest.mark.parametrize("mutation", ["cancelLoan", "writeOffLoan"])
async def test_a_stale_version_closes_nothing(client, engine, products, mutation):
    loan = await create_loan(engine) if mutation == "cancelLoan" else await active_loan(engine)
    operation = CANCEL if mutation == "cancelLoan" else WRITE_OFF
    before = await row_counts(engine)
    stale = {"loanId": gid(loan), "reason": "Closing.", "expectedVersion": loan.version - 1}
    body = await gql(client, operation, {"input": stale})
    assert errors_of(body, mutation) == [("STALE_VERSION", ["input", "expectedVersion"])]
    assert await row_counts(engine) == before
    fresh = stale | {"expectedVersion": loan.version}
    assert ok(await gql(client, operation, {"input": fresh}), mutation)["loan"]["version"] == (
        loan.version + 1
    )


@pytest.mark.parametrize("round_", range(5))
async def test_a_cancellation_racing_a_disbursement(client, engine, products, round_):
    loan = await create_loan(engine)
    calls = [
        gql(client, CANCEL, {"input": {"loanId": gid(loan), "reason": "Race."}}),
        gql(client, DISBURSE, {"id": gid(loan)}),
    ]
    if round_ % 2:
        calls.reverse()
    results = await asyncio.gather(*calls)
    if round_ % 2:
        results.reverse()
    cancelled = outcome(results[0], "cancelLoan")
    disbursed = (results[1]["data"]["disburseLoan"]["userErrors"] or [{"code": "OK"}])[0]["code"]
    assert sorted((cancelled, disbursed)) == ["INVALID_TRANSITION", "OK"]
    row = await loan_row(engine, loan.id)
    async with engine.connect() as connection:
        installments = await connection.scalar(
            text("SELECT count(*) FROM installments WHERE loan_id = :id"), {"id": loan.id}
        )
    if cancelled == "OK":
        assert (row.status, installments) == ("CANCELLED", 0)
    else:
        assert (row.status, row.closed_reason) == ("ACTIVE", None)
        assert installments == 24


# --- write-off --------------------------------------------------------------------------------


async def test_writing_off_stores_what_was_left_to_pay(client, engine, products):
    # given an active loan with a partial payment
    loan = await active_loan(engine)
    await pay(engine, loan.id, "150.00", DAY - timedelta(days=3))
    payoff = Decimal((await read_loan(client, loan))["payoffAmount"])
    # when it is written off
    payload = ok(
        await gql(
            client,
            WRITE_OFF,
            {"input": {"loanId": gid(loan), "reason": "Borrower unreachable for 90 days."}},
        ),
        "writeOffLoan",
    )
    # then the amount written off is what was left to pay, and the loan is final
    written_off = payload["loan"]
    assert written_off["status"] == "WRITTEN_OFF"
    assert Decimal(written_off["writtenOffAmount"]) == payoff
    assert written_off["closedReason"] == "Borrower unreachable for 90 days."
    assert written_off["closedAt"] is not None
    assert written_off["availableActions"] == []
    row = await loan_row(engine, loan.id)
    assert (row.status, row.written_off_amount) == ("WRITTEN_OFF", payoff)
    ledger = await ledger_rows(engine, loan.id)
    assert ledger.scheduled - ledger.allocated == payoff
    async with engine.connect() as connection:
        event = (
            await connection.execute(
                text("SELECT before, after FROM audit_events WHERE action = 'loan.written_off'")
            )
        ).one()
    assert (event.before["status"], event.after["status"]) == ("ACTIVE", "WRITTEN_OFF")
    assert Decimal(event.after["written_off_amount"]) == payoff
    read = await read_loan(client, loan)
    assert read["settlementQuote"] is None
    assert Decimal(read["writtenOffAmount"]) == payoff
    # and no money moves on it afterwards: a payment, a settlement, a reversal, a cancellation
    before = await row_counts(engine)
    body = await gql(client, RECORD, {"input": {"loanId": gid(loan), "amount": "10.00"}})
    assert outcome(body, "recordPayment") == "INVALID_TRANSITION"
    body = await gql(client, SETTLE, {"input": {"loanId": gid(loan), "amount": str(payoff)}})
    assert outcome(body, "settleLoan") == "INVALID_TRANSITION"
    [paid] = read["payments"]["edges"]
    body = await gql(client, REVERSE, {"input": {"paymentId": paid["node"]["id"]}})
    assert outcome(body, "reversePayment") == "INVALID_TRANSITION"
    body = await gql(client, WRITE_OFF, {"input": {"loanId": gid(loan), "reason": "Again."}})
    assert outcome(body, "writeOffLoan") == "INVALID_TRANSITION"
    body = await gql(client, CANCEL, {"input": {"loanId": gid(loan), "reason": "Cancel."}})
    assert outcome(body, "cancelLoan") == "INVALID_TRANSITION"
    assert await row_counts(engine) == before
    assert tuple(await loan_row(engine, loan.id)) == tuple(row)


async def test_an_approved_or_paid_off_loan_cannot_be_written_off(client, engine, products):
    approved = await create_loan(engine)
    paid_off = await active_loan(engine)
    payoff = (await read_loan(client, paid_off))["payoffAmount"]
    await pay(engine, paid_off.id, payoff, DAY)
    before = await row_counts(engine)
    for loan in (approved, paid_off):
        body = await gql(client, WRITE_OFF, {"input": {"loanId": gid(loan), "reason": "No."}})
        assert outcome(body, "writeOffLoan") == "INVALID_TRANSITION"
    assert await row_counts(engine) == before


@pytest.mark.parametrize("round_", range(5))
async def test_a_write_off_racing_a_payment(client, engine, products, round_):
    # given an active loan and what is left to pay on it
    loan = await active_loan(engine)
    payoff = Decimal((await read_loan(client, loan))["payoffAmount"])
    # when a write-off and a payment arrive at once (in either order)
    calls = [
        gql(client, WRITE_OFF, {"input": {"loanId": gid(loan), "reason": "Race."}}),
        gql(client, RECORD, {"input": {"loanId": gid(loan), "amount": "50.00"}}),
    ]
    if round_ % 2:
        calls.reverse()
    results = await asyncio.gather(*calls)
    if round_ % 2:
        results.reverse()
    written, paid = results
    # then the write-off always wins, and the payment either landed before it or was refused
    assert outcome(written, "writeOffLoan") == "OK"
    row = await loan_row(engine, loan.id)
    ledger = await ledger_rows(engine, loan.id)
    assert row.status == "WRITTEN_OFF"
    if outcome(paid, "recordPayment") == "OK":
        assert (ledger.live, ledger.paid) == (1, Decimal("50.00"))
        assert row.written_off_amount == payoff - Decimal("50.00")
    else:
        assert outcome(paid, "recordPayment") == "INVALID_TRANSITION"
        assert (ledger.live, ledger.paid) == (0, 0)
        assert row.written_off_amount == payoff
    # either way, what was written off is exactly what the live payments did not cover
    assert row.written_off_amount == ledger.scheduled - ledger.allocated
    assert ledger.paid == ledger.allocated
    assert Decimal(written["data"]["writeOffLoan"]["loan"]["writtenOffAmount"]) == (
        row.written_off_amount
    )


# --- settlement -------------------------------------------------------------------------------


def days_30_360(start: date, end: date) -> int:
    """Days on the 30/360 bond basis, as the loan's day count counts them."""
    d1 = min(start.day, 30)
    d2 = min(end.day, 30) if d1 == 30 else end.day
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def days_between(start: date, end: date, day_count: str) -> int:
    return days_30_360(start, end) if day_count == "THIRTY_360" else (end - start).days


def expected_quote(loan_view, day: date) -> dict[str, Decimal]:
    """The DOMAIN's settlement rule worked out from a loan's schedule as the API shows it."""
    rows = loan_view["schedule"]["installments"]
    day_count = loan_view["dayCount"]
    minor = Decimal(1) if loan_view["currency"] in ("JPY", "KRW") else CENT
    money = {k: Decimal(0) for k in ("overdue", "principal", "accrued", "rebate")}
    due = [r for r in rows if date.fromisoformat(r["dueDate"]) <= day]
    later = [r for r in rows if date.fromisoformat(r["dueDate"]) > day]
    for r in due:
        money["overdue"] += Decimal(r["amountOutstanding"])
    for r in later:
        money["principal"] += Decimal(r["principalDue"]) - Decimal(r["principalPaid"])
    if later:
        current = later[0]
        previous = (
            date.fromisoformat(due[-1]["dueDate"])
            if due
            else date.fromisoformat(loan_view["disbursedOn"])
        )
        period = days_between(previous, date.fromisoformat(current["dueDate"]), day_count)
        elapsed = days_between(previous, day, day_count)
        share = (Decimal(current["interestDue"]) * elapsed / period).quantize(
            minor, rounding=ROUND_HALF_EVEN
        )
        money["accrued"] = max(Decimal(0), share - Decimal(current["interestPaid"]))
    unpaid_interest = sum(
        (Decimal(r["interestDue"]) - Decimal(r["interestPaid"]) for r in later), Decimal(0)
    )
    money["rebate"] = unpaid_interest - money["accrued"]
    money["amount"] = money["overdue"] + money["principal"] + money["accrued"]
    return money


def as_decimals(quote) -> dict[str, Decimal]:
    return {
        "amount": Decimal(quote["amount"]),
        "overdue": Decimal(quote["overdue"]),
        "principal": Decimal(quote["principal"]),
        "accrued": Decimal(quote["accruedInterest"]),
        "rebate": Decimal(quote["rebate"]),
    }


async def test_the_quote_of_an_active_loan(client, per_field_client, engine, products):
    # given an active loan, instalment 1 overdue and partly paid
    loan = await active_loan(engine)
    await pay(engine, loan.id, "100.00", DAY - timedelta(days=5))
    for reader in (client, per_field_client):
        view = await read_loan(reader, loan)
        quote = view["settlementQuote"]
        # then the quote follows the DOMAIN's rule, to the cent
        assert quote["validOn"] == DAY.isoformat()
        assert as_decimals(quote) == expected_quote(view, DAY)
        assert Decimal(quote["overdue"]) == Decimal(
            view["schedule"]["installments"][0]["amountOutstanding"]
        )
        assert Decimal(quote["accruedInterest"]) > 0
        # and what is not owed of the payoff is exactly the rebate
        assert Decimal(view["payoffAmount"]) - Decimal(quote["amount"]) == Decimal(quote["rebate"])
        # a quote for an earlier day (after the payment) is smaller
        earlier = DAY - timedelta(days=2)
        view_then = await read_loan(reader, loan, earlier)
        assert view_then["settlementQuote"]["validOn"] == earlier.isoformat()
        assert as_decimals(view_then["settlementQuote"]) == expected_quote(view, earlier)
    # no quote before the last payment, before disbursement, in the future past maturity
    for day in (DAY - timedelta(days=6), DAY - timedelta(days=46)):
        body = await gql(client, QUOTE, {"id": gid(loan), "asOf": day.isoformat()})
        assert body["data"]["loan"]["settlementQuote"] is None
    maturity = date.fromisoformat(view["maturityDate"])
    body = await gql(
        client, QUOTE, {"id": gid(loan), "asOf": (maturity + timedelta(days=1)).isoformat()}
    )
    assert body["data"]["loan"]["settlementQuote"] is None


@pytest.mark.parametrize(
    "earlier",
    [
        None,
        "100.00",  # part of the overdue instalment 1
        "1200.00",  # instalments 1 and 2 in full, and part of 3: a prepayment
    ],
)
async def test_settling_with_the_quoted_amount(client, per_field_client, engine, products, earlier):
    # given an active loan, perhaps with an earlier payment, and its quote for today
    loan = await active_loan(engine)
    if earlier is not None:
        await pay(engine, loan.id, earlier, DAY - timedelta(days=5))
    view = await read_loan(client, loan)
    quote = view["settlementQuote"]
    assert as_decimals(quote) == expected_quote(view, DAY)
    before = await ledger_rows(engine, loan.id)
    # when it is settled with exactly that amount today
    payload = ok(
        await gql(
            client,
            SETTLE,
            {
                "input": {
                    "loanId": gid(loan),
                    "amount": quote["amount"],
                    "receivedOn": DAY.isoformat(),
                    "reference": "SETTLE-1",
                    "expectedVersion": view["version"],
                }
            },
        ),
        "settleLoan",
    )
    # then the loan is PAID_OFF with the quoted rebate
    settled = payload["loan"]
    assert settled["status"] == "PAID_OFF"
    assert settled["settlementRebate"] == quote["rebate"]
    assert settled["payoffAmount"] == "0.00"
    assert settled["availableActions"] == ["REVERSE_PAYMENT"]
    # and the payment is the settlement, its allocations paying the amount and waiving the rebate
    payment = payload["payment"]
    assert (payment["amount"], payment["settlement"], payment["reference"]) == (
        quote["amount"],
        True,
        "SETTLE-1",
    )
    allocations = payment["allocations"]
    assert sum(Decimal(a["interestWaived"]) for a in allocations) == Decimal(quote["rebate"])
    assert sum(Decimal(a["amount"]) for a in allocations) == Decimal(quote["amount"])
    assert all(
        Decimal(a["amount"]) == Decimal(a["principal"]) + Decimal(a["interest"])
        for a in allocations
    )
    # every instalment left is touched once; none has anything outstanding
    assert len({a["installment"]["number"] for a in allocations}) == len(allocations)
    live = 1 if earlier is None else 2
    for reader in (client, per_field_client):
        read = await read_loan(reader, loan)
        assert read["settlementQuote"] is None
        assert (read["status"], read["settlementRebate"]) == ("PAID_OFF", quote["rebate"])
        for row in read["schedule"]["installments"]:
            assert row["amountOutstanding"] == "0.00", row
            assert row["status"] == "PAID", row
            assert row["paidOn"] is not None
        assert read["outstandingPrincipal"] == "0.00"
        settlements = [e["node"] for e in read["payments"]["edges"] if e["node"]["settlement"]]
        assert [p["id"] for p in settlements] == [payment["id"]]
        assert settlements[0]["allocations"] == allocations
        assert read["payments"]["totalCount"] == live
    # and the rows agree: one settling payment, the waived interest equal to the loan's rebate
    row = await loan_row(engine, loan.id)
    ledger = await ledger_rows(engine, loan.id)
    assert (row.status, row.settlement_rebate) == ("PAID_OFF", Decimal(quote["rebate"]))
    assert (ledger.settlements, ledger.live) == (1, live)
    assert ledger.waived == row.settlement_rebate
    assert ledger.allocated == ledger.paid == before.paid + Decimal(quote["amount"])
    assert ledger.allocated + ledger.waived == ledger.scheduled
    async with engine.connect() as connection:
        actions = (
            await connection.execute(text("SELECT action FROM audit_events ORDER BY id"))
        ).scalars()
        assert list(actions)[-2:] == ["payment.recorded", "loan.settled"]


async def test_settling_on_the_maturity_day_waives_nothing(client, engine, products):
    # given a 3-month loan whose last instalment fell due a while ago
    loan = await create_loan(
        engine,
        product_code="SHORT",
        amount="1000.00",
        term_months=3,
        disbursed_on=DAY - timedelta(days=150),
    )
    view = await read_loan(client, loan)
    maturity = date.fromisoformat(view["maturityDate"])
    assert maturity < DAY
    # when it is settled on its maturity day
    quote = (await read_loan(client, loan, maturity))["settlementQuote"]
    assert quote["rebate"] == "0.00"
    assert quote["amount"] == view["schedule"]["totalPayable"]
    payload = ok(
        await gql(
            client,
            SETTLE,
            {
                "input": {
                    "loanId": gid(loan),
                    "amount": quote["amount"],
                    "receivedOn": maturity.isoformat(),
                }
            },
        ),
        "settleLoan",
    )
    assert payload["loan"]["status"] == "PAID_OFF"
    assert payload["loan"]["settlementRebate"] == "0.00"
    assert all(a["interestWaived"] == "0.00" for a in payload["payment"]["allocations"])


TERMS = {
    "actual/365, monthly": {"day_count": DayCount.ACTUAL_365},
    "actual/365, biweekly, equal principal": {
        "day_count": DayCount.ACTUAL_365,
        "frequency": RepaymentFrequency.BIWEEKLY,
        "amortization": AmortizationMethod.EQUAL_PRINCIPAL,
    },
    "30/360, weekly": {"frequency": RepaymentFrequency.WEEKLY},
    "yen (no minor unit), actual/365": {
        "currency": "JPY",
        "min_amount": Decimal("10000"),
        "max_amount": Decimal("100000000"),
        "day_count": DayCount.ACTUAL_365,
    },
}


@pytest.mark.parametrize("terms", list(TERMS))
async def test_quote_and_settlement_across_terms(client, engine, terms):
    # given a loan on other terms, disbursed 45 days ago, with a payment ten days ago
    await create_product(engine, code="OTHER", annual_interest_rate=Decimal("17.9"), **TERMS[terms])
    yen = TERMS[terms].get("currency") == "JPY"
    loan = await create_loan(
        engine,
        product_code="OTHER",
        amount="1000000" if yen else "10000.00",
        term_months=12,
        disbursed_on=DAY - timedelta(days=45),
    )
    await pay(engine, loan.id, "30000" if yen else "300.00", DAY - timedelta(days=10))
    view = await read_loan(client, loan)
    quote = view["settlementQuote"]
    # then the quote follows the rule in the loan's day count and currency
    assert as_decimals(quote) == expected_quote(view, DAY)
    if yen:
        assert all("." not in quote[k] for k in ("amount", "rebate", "accruedInterest"))
    # and settling with it pays everything off, waiving exactly the rebate
    payload = ok(
        await gql(client, SETTLE, {"input": {"loanId": gid(loan), "amount": quote["amount"]}}),
        "settleLoan",
    )
    assert payload["loan"]["status"] == "PAID_OFF"
    # (the same text: stored yen amounts read back as "78028.00" and computed ones as
    # "78028" until every amount was written with its currency's digits)
    assert payload["loan"]["settlementRebate"] == quote["rebate"]
    ledger = await ledger_rows(engine, loan.id)
    assert ledger.waived == Decimal(quote["rebate"])
    assert ledger.allocated + ledger.waived == ledger.scheduled
    read = await read_loan(client, loan)
    assert {Decimal(r["amountOutstanding"]) for r in read["schedule"]["installments"]} == {0}


async def test_settling_on_the_day_of_disbursement_repays_the_principal(client, engine, products):
    loan = await create_loan(engine, amount="10000.00", disbursed_on=DAY)
    view = await read_loan(client, loan)
    quote = view["settlementQuote"]
    total_interest = sum(Decimal(r["interestDue"]) for r in view["schedule"]["installments"])
    assert (quote["amount"], quote["principal"], quote["accruedInterest"], quote["overdue"]) == (
        "10000.00",
        "10000.00",
        "0.00",
        "0.00",
    )
    assert Decimal(quote["rebate"]) == total_interest
    payload = ok(
        await gql(client, SETTLE, {"input": {"loanId": gid(loan), "amount": "10000.00"}}),
        "settleLoan",
    )
    assert Decimal(payload["loan"]["settlementRebate"]) == total_interest
    assert len(payload["payment"]["allocations"]) == 24


async def test_settling_on_a_due_date_owes_that_instalment_and_no_accrual(client, engine, products):
    # given a loan whose first instalment falls due today
    loan = await create_loan(engine, disbursed_on=DAY - timedelta(days=20), first_due_date=DAY)
    view = await read_loan(client, loan)
    first = view["schedule"]["installments"][0]
    quote = view["settlementQuote"]
    # then the instalment due today is owed in full, and nothing has accrued on the next one
    assert quote["overdue"] == first["totalDue"]
    assert quote["accruedInterest"] == "0.00"
    assert as_decimals(quote) == expected_quote(view, DAY)
    ok(
        await gql(client, SETTLE, {"input": {"loanId": gid(loan), "amount": quote["amount"]}}),
        "settleLoan",
    )
    assert (await loan_row(engine, loan.id)).status == "PAID_OFF"


@pytest.mark.parametrize("off_by", [CENT, -CENT])
async def test_any_other_amount_is_a_settlement_mismatch(client, engine, products, off_by):
    loan = await active_loan(engine)
    quote = (await read_loan(client, loan))["settlementQuote"]
    before = await row_counts(engine)
    body = await gql(
        client,
        SETTLE,
        {"input": {"loanId": gid(loan), "amount": str(Decimal(quote["amount"]) + off_by)}},
    )
    assert errors_of(body, "settleLoan") == [("SETTLEMENT_AMOUNT_MISMATCH", ["input", "amount"])]
    assert quote["amount"] in body["data"]["settleLoan"]["userErrors"][0]["message"]
    assert body["data"]["settleLoan"]["payment"] is None
    assert await row_counts(engine) == before
    assert (await loan_row(engine, loan.id)).status == "ACTIVE"


@pytest.mark.parametrize(
    ("given", "code", "field"),
    [
        ({"amount": "0"}, "VALIDATION_FAILED", ["input", "amount"]),
        ({"amount": "-5.00"}, "VALIDATION_FAILED", ["input", "amount"]),
        ({"amount": "100.001"}, "VALIDATION_FAILED", ["input", "amount"]),
        ({"amount": "NaN"}, "VALIDATION_FAILED", ["input", "amount"]),
        ({"expectedVersion": 1}, "STALE_VERSION", ["input", "expectedVersion"]),
        ({"reference": "x" * 101}, "VALIDATION_FAILED", ["input", "reference"]),
    ],
)
async def test_a_bad_settlement_writes_nothing(client, engine, products, given, code, field):
    loan = await active_loan(engine)
    quote = (await read_loan(client, loan))["settlementQuote"]
    before = await row_counts(engine)
    body = await gql(
        client, SETTLE, {"input": {"loanId": gid(loan), "amount": quote["amount"]} | given}
    )
    assert errors_of(body, "settleLoan") == [(code, field)]
    assert await row_counts(engine) == before


async def test_settlement_days_it_cannot_be_received_on(client, engine, products):
    # given an active loan with a payment five days ago, and a loan past its maturity
    loan = await active_loan(engine)
    await pay(engine, loan.id, "100.00", DAY - timedelta(days=5))
    matured = await create_loan(
        engine,
        product_code="SHORT",
        amount="1000.00",
        term_months=3,
        disbursed_on=DAY - timedelta(days=150),
    )
    maturity = date.fromisoformat((await read_loan(client, matured))["maturityDate"])
    before = await row_counts(engine)
    cases = [
        (loan, DAY - timedelta(days=46), "disbursed"),  # before disbursement
        (loan, DAY - timedelta(days=6), "payment"),  # before the latest payment
        (loan, DAY + timedelta(days=1), "future"),  # in the future
        (matured, maturity + timedelta(days=1), "maturity"),  # after maturity
        (matured, DAY, "maturity"),
    ]
    for which, day, word in cases:
        body = await gql(
            client,
            SETTLE,
            {"input": {"loanId": gid(which), "amount": "1000.00", "receivedOn": day.isoformat()}},
        )
        assert errors_of(body, "settleLoan") == [("VALIDATION_FAILED", ["input", "receivedOn"])]
        assert word in body["data"]["settleLoan"]["userErrors"][0]["message"]
    assert await row_counts(engine) == before


async def test_reversing_the_settlement_restores_the_loan(client, engine, products):
    # given a settled loan, and how it stood before it was settled
    loan = await active_loan(engine)
    earlier = await pay(engine, loan.id, "100.00", DAY - timedelta(days=5))
    before = await read_loan(client, loan)
    quote = before["settlementQuote"]
    settled = ok(
        await gql(client, SETTLE, {"input": {"loanId": gid(loan), "amount": quote["amount"]}}),
        "settleLoan",
    )
    # when an earlier payment is reversed while it stands settled
    counts = await row_counts(engine)
    body = await gql(
        client,
        REVERSE,
        {"input": {"paymentId": to_global_id("Payment", earlier.payment.id), "reason": "Oops."}},
    )
    # then that is INVALID_TRANSITION, and nothing is written
    assert errors_of(body, "reversePayment") == [("INVALID_TRANSITION", ["input", "paymentId"])]
    assert await row_counts(engine) == counts
    # when the settlement itself is reversed
    payload = ok(
        await gql(
            client,
            REVERSE,
            {"input": {"paymentId": settled["payment"]["id"], "reason": "Bounced."}},
        ),
        "reversePayment",
    )
    # then the loan is ACTIVE again, without a rebate, and owes what it owed
    assert payload["payment"]["reversed"] is True
    assert payload["payment"]["allocations"] == []
    assert payload["loan"]["status"] == "ACTIVE"
    assert payload["loan"]["settlementRebate"] is None
    assert payload["loan"]["payoffAmount"] == before["payoffAmount"]
    after = await read_loan(client, loan)
    assert after["schedule"] == before["schedule"]  # every instalment's figures, exactly
    assert after["settlementQuote"] == quote
    assert after["outstandingPrincipal"] == before["outstandingPrincipal"]
    assert after["availableActions"] == before["availableActions"]
    live = [e["node"] for e in after["payments"]["edges"] if not e["node"]["reversed"]]
    assert live == [e["node"] for e in before["payments"]["edges"]]  # allocations as before
    row = await loan_row(engine, loan.id)
    ledger = await ledger_rows(engine, loan.id)
    assert (row.status, row.settlement_rebate) == ("ACTIVE", None)
    assert (ledger.live, ledger.waived, ledger.paid, ledger.allocated) == (
        1,
        0,
        Decimal("100.00"),
        Decimal("100.00"),
    )
    async with engine.connect() as connection:
        actions = (
            await connection.execute(text("SELECT action FROM audit_events ORDER BY id"))
        ).scalars()
        assert list(actions)[-2:] == ["payment.reversed", "loan.reopened"]
    # and the earlier payment can be reversed now, and the loan settled again
    ok(
        await gql(
            client, REVERSE, {"input": {"paymentId": to_global_id("Payment", earlier.payment.id)}}
        ),
        "reversePayment",
    )
    again = (await read_loan(client, loan))["settlementQuote"]
    assert Decimal(again["amount"]) == Decimal(quote["amount"]) + Decimal("100.00")
    ok(
        await gql(client, SETTLE, {"input": {"loanId": gid(loan), "amount": again["amount"]}}),
        "settleLoan",
    )
    assert (await loan_row(engine, loan.id)).status == "PAID_OFF"


@pytest.mark.parametrize("round_", range(5))
async def test_a_settlement_racing_a_payment(client, engine, products, round_):
    # given an active loan and its quote for today
    loan = await active_loan(engine)
    quote = (await read_loan(client, loan))["settlementQuote"]
    scheduled = (await ledger_rows(engine, loan.id)).scheduled
    # when the settlement and a payment arrive at once (in either order)
    calls = [
        gql(client, SETTLE, {"input": {"loanId": gid(loan), "amount": quote["amount"]}}),
        gql(client, RECORD, {"input": {"loanId": gid(loan), "amount": "25.00"}}),
    ]
    if round_ % 2:
        calls.reverse()
    results = await asyncio.gather(*calls)
    if round_ % 2:
        results.reverse()
    settled, paid = outcome(results[0], "settleLoan"), outcome(results[1], "recordPayment")
    row = await loan_row(engine, loan.id)
    ledger = await ledger_rows(engine, loan.id)
    # then never both as-is: the payment first and the quote no longer holds, or the
    # settlement first and the loan takes no more payments
    assert (settled, paid) in {
        ("SETTLEMENT_AMOUNT_MISMATCH", "OK"),
        ("OK", "INVALID_TRANSITION"),
    }
    if settled == "OK":
        assert (row.status, row.settlement_rebate) == ("PAID_OFF", Decimal(quote["rebate"]))
        assert (ledger.live, ledger.settlements, ledger.paid) == (1, 1, Decimal(quote["amount"]))
    else:
        assert (row.status, row.settlement_rebate) == ("ACTIVE", None)
        assert (ledger.live, ledger.settlements, ledger.paid) == (1, 0, Decimal("25.00"))
        message = results[0]["data"]["settleLoan"]["userErrors"][0]["message"]
        fresh = (await read_loan(client, loan))["settlementQuote"]["amount"]
        assert fresh in message
    # and the loan is never paid twice
    assert ledger.paid == ledger.allocated <= scheduled
    assert ledger.allocated + ledger.waived <= scheduled


# --- replays and roles ------------------------------------------------------------------------


async def test_cancel_write_off_and_settle_replay_without_writing(client, engine, products):
    approved = await create_loan(engine)
    to_write_off = await active_loan(engine)
    to_settle = await active_loan(engine)
    amount = (await read_loan(client, to_settle))["settlementQuote"]["amount"]
    calls = [
        (CANCEL, "cancelLoan", {"loanId": gid(approved), "reason": "Withdrawn."}),
        (WRITE_OFF, "writeOffLoan", {"loanId": gid(to_write_off), "reason": "Lost."}),
        (SETTLE, "settleLoan", {"loanId": gid(to_settle), "amount": amount}),
    ]
    for operation, name, given in calls:
        variables = {"input": given | {"idempotencyKey": f"{name}-1"}}
        first = ok(await gql(client, operation, variables), name)
        counts = await row_counts(engine)
        again = ok(await gql(client, operation, variables), name)
        assert (first["replayed"], again["replayed"]) == (False, True)
        assert again["loan"] == first["loan"]
        if name == "settleLoan":
            assert again["payment"] == first["payment"]
        assert await row_counts(engine) == counts, name
        # the key with another input is refused
        other = {"input": variables["input"] | {"reason": "Other."}}
        if name == "settleLoan":
            other = {"input": variables["input"] | {"reference": "other"}}
        assert errors_of(await gql(client, operation, other), name) == [
            ("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])
        ]
        assert await row_counts(engine) == counts, name
    # a reversal of the settlement replays too
    payment_id = (await read_loan(client, to_settle))["payments"]["edges"][0]["node"]["id"]
    variables = {"input": {"paymentId": payment_id, "idempotencyKey": "reverse-1"}}
    first = ok(await gql(client, REVERSE, variables), "reversePayment")
    counts = await row_counts(engine)
    again = ok(await gql(client, REVERSE, variables), "reversePayment")
    assert again["replayed"] is True
    assert again["loan"]["status"] == first["loan"]["status"] == "ACTIVE"
    assert await row_counts(engine) == counts


MISSING_LOAN = to_global_id("Loan", 10**9)
ROLE_CASES = {
    "cancelLoan": (
        f'mutation {{ cancelLoan(input: {{loanId: "{MISSING_LOAN}", reason: "x"}}) '
        "{ userErrors { code } } }",
        {Role.ADMIN, Role.UNDERWRITER, Role.SERVICER},
    ),
    "writeOffLoan": (
        f'mutation {{ writeOffLoan(input: {{loanId: "{MISSING_LOAN}", reason: "x"}}) '
        "{ userErrors { code } } }",
        {Role.ADMIN, Role.SERVICER},
    ),
    "settleLoan": (
        f'mutation {{ settleLoan(input: {{loanId: "{MISSING_LOAN}", amount: "1"}}) '
        "{ userErrors { code } } }",
        {Role.ADMIN, Role.SERVICER},
    ),
}


@pytest.mark.parametrize("role", list(STAFF_ROLES))
@pytest.mark.parametrize("mutation", list(ROLE_CASES))
async def test_who_may_close_a_loan(app, api_keys, engine, mutation, role):
    operation, allowed = ROLE_CASES[mutation]
    async with http_client(app, api_keys[role]) as caller:
        body = await gql(caller, operation)
    if role in allowed:
        assert "errors" not in body, body
        assert body["data"][mutation]["userErrors"] == [{"code": "NOT_FOUND"}]
    else:
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await row_counts(engine) == (0, 0, 0, 0, 0)
