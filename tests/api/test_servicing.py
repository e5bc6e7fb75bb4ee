"""Disbursement, schedules, payments and reversals over HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from graph.ids import to_global_id
from lending.clock import today
from tests.dbfixtures import gql
from tests.factories import create_loan, create_product, pay

SCHEDULE_FIELDS = "number dueDate principalDue interestDue totalDue balanceAfter"

PREVIEW = f"""
query Preview($input: SchedulePreviewInput!) {{
  previewSchedule(input: $input) {{
    schedule {{ installments {{ {SCHEDULE_FIELDS} }} totalPrincipal totalInterest totalPayable
               maturityDate }}
    userErrors {{ code field message }}
  }}
}}
"""

DISBURSE = f"""
mutation Disburse($input: DisburseLoanInput!) {{
  disburseLoan(input: $input) {{
    loan {{ id status version disbursedOn maturityDate availableActions
           schedule {{ installments {{ {SCHEDULE_FIELDS} }} totalPrincipal totalInterest
                      totalPayable }} }}
    userErrors {{ code field message }}
  }}
}}
"""

RECORD = """
mutation Record($input: RecordPaymentInput!) {
  recordPayment(input: $input) {
    payment { id amount receivedOn recordedBy reversed reference
              allocations { installment { number } principal interest amount } }
    loan { status version payoffAmount outstandingPrincipal }
    userErrors { code field message }
  }
}
"""

REVERSE = """
mutation Reverse($input: ReversePaymentInput!) {
  reversePayment(input: $input) {
    payment { id reversed reversedReason reversedBy allocations { amount } }
    loan { status payoffAmount }
    userErrors { code field message }
  }
}
"""

LOAN = """
query Loan($id: ID!, $asOf: Date) {
  loan(id: $id) {
    status payoffAmount(asOf: $asOf) outstandingPrincipal
    schedule { installments { number dueDate totalDue principalPaid interestPaid
                              amountOutstanding paidOn status(asOf: $asOf) } }
    payments { totalCount edges { node { amount reversed
               allocations { installment { number } principal interest } } } }
  }
}
"""

DAY = today()


def AGO(days: int) -> datetime:
    return datetime.combine(DAY - timedelta(days=days), time(9), tzinfo=UTC)


@pytest.fixture
async def products(engine):
    await create_product(engine)
    await create_product(
        engine,
        code="SMALL-3",
        min_amount=Decimal("100.00"),
        max_amount=Decimal("100000.00"),
        min_term_months=1,
        max_term_months=12,
        annual_interest_rate=Decimal("12.000000"),
    )


def gid(kind: str, key: int) -> str:
    return to_global_id(kind, key)


def ok(body, name):
    assert "errors" not in body, body
    payload = body["data"][name]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


def failed(body, name):
    assert "errors" not in body, body
    return [(e["code"], e["field"]) for e in body["data"][name]["userErrors"]]


async def test_preview_equals_the_booked_schedule(client, engine, products):
    # given an approved loan of 12,345.67 over 24 months on PERSONAL-USD
    loan = await create_loan(engine, amount="12345.67", term_months=24, submitted_at=AGO(10))
    disbursed, first_due = DAY - timedelta(days=3), DAY + timedelta(days=40)
    terms = {"disbursedOn": disbursed.isoformat(), "firstDueDate": first_due.isoformat()}
    # when the same inputs are previewed and then booked
    preview = ok(
        await gql(
            client,
            PREVIEW,
            {
                "input": {
                    "productCode": "PERSONAL-USD",
                    "amount": "12345.67",
                    "termMonths": 24,
                    **terms,
                }
            },
        ),
        "previewSchedule",
    )["schedule"]
    booked = ok(
        await gql(client, DISBURSE, {"input": {"loanId": gid("Loan", loan.id), **terms}}),
        "disburseLoan",
    )["loan"]
    # then they are identical, field by field
    assert booked["schedule"]["installments"] == preview["installments"]
    for total in ("totalPrincipal", "totalInterest", "totalPayable"):
        assert booked["schedule"][total] == preview[total]
    assert booked["maturityDate"] == preview["maturityDate"]
    assert booked["status"] == "ACTIVE"
    assert booked["disbursedOn"] == disbursed.isoformat()
    assert booked["availableActions"] == [
        "RECORD_PAYMENT",
        "REVERSE_PAYMENT",
        "SETTLE",
        "WRITE_OFF",
    ]
    assert len(preview["installments"]) == 24
    assert preview["installments"][0]["dueDate"] == first_due.isoformat()
    assert preview["totalPrincipal"] == "12345.67"
    assert preview["installments"][-1]["balanceAfter"] == "0.00"


async def test_preview_with_explicit_terms_reproduces_the_reference_case(client):
    body = await gql(
        client,
        PREVIEW,
        {
            "input": {
                "terms": {
                    "currency": "USD",
                    "annualInterestRate": "9.4822",
                    "amortization": "ANNUITY",
                    "frequency": "MONTHLY",
                    "dayCount": "THIRTY_360",
                },
                "amount": "100.00",
                "termMonths": 6,
                "disbursedOn": "2026-01-31",
            }
        },
    )
    schedule = ok(body, "previewSchedule")["schedule"]
    rows = schedule["installments"]
    assert [r["interestDue"] for r in rows] == ["0.79", "0.66", "0.53", "0.40", "0.27", "0.13"]
    assert [r["balanceAfter"] for r in rows] == [
        "83.66",
        "67.19",
        "50.59",
        "33.86",
        "17.00",
        "0.00",
    ]
    assert {r["totalDue"] for r in rows} == {"17.13"}
    assert [r["dueDate"] for r in rows][:3] == ["2026-02-28", "2026-03-31", "2026-04-30"]


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"amount": "0"}, "VALIDATION_FAILED", ["input", "amount"]),
        ({"amount": "99.999"}, "VALIDATION_FAILED", ["input", "amount"]),
        ({"amount": "1"}, "AMOUNT_OUT_OF_RANGE", ["input", "amount"]),
        ({"termMonths": 700}, "TERM_OUT_OF_RANGE", ["input", "termMonths"]),
        ({"productCode": "NOPE"}, "NOT_FOUND", ["input", "productCode"]),
        (
            {"firstDueDate": "2020-01-01", "disbursedOn": "2026-01-01"},
            "VALIDATION_FAILED",
            ["input", "firstDueDate"],
        ),
        (
            {
                "terms": {
                    "currency": "USD",
                    "annualInterestRate": "5",
                    "amortization": "ANNUITY",
                    "frequency": "MONTHLY",
                    "dayCount": "THIRTY_360",
                }
            },
            "VALIDATION_FAILED",
            ["input", "terms"],
        ),
    ],
)
async def test_preview_bad_input(client, products, overrides, code, field):
    base = {"productCode": "PERSONAL-USD", "amount": "5000", "termMonths": 12}
    body = await gql(client, PREVIEW, {"input": base | overrides})
    assert failed(body, "previewSchedule") == [(code, field)]


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        (
            {"disbursedOn": (DAY + timedelta(days=1)).isoformat()},
            "VALIDATION_FAILED",
            ["input", "disbursedOn"],
        ),
        (
            {"disbursedOn": (DAY - timedelta(days=30)).isoformat()},
            "VALIDATION_FAILED",
            ["input", "disbursedOn"],
        ),  # before the approval
        ({"firstDueDate": DAY.isoformat()}, "VALIDATION_FAILED", ["input", "firstDueDate"]),
        ({"loanId": "bm9wZQ"}, "VALIDATION_FAILED", ["input", "loanId"]),
        ({"loanId": to_global_id("Loan", 10**9)}, "NOT_FOUND", ["input", "loanId"]),
    ],
)
async def test_disburse_bad_input_writes_nothing(client, engine, products, overrides, code, field):
    loan = await create_loan(engine)
    body = await gql(client, DISBURSE, {"input": {"loanId": gid("Loan", loan.id)} | overrides})
    assert failed(body, "disburseLoan") == [(code, field)]
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM installments")) == 0
        assert await connection.scalar(text("SELECT status FROM loans")) == "APPROVED"


async def test_disbursing_twice_is_an_invalid_transition(client, engine, products):
    loan = await create_loan(engine, disbursed_on=DAY - timedelta(days=1))
    body = await gql(client, DISBURSE, {"input": {"loanId": gid("Loan", loan.id)}})
    assert failed(body, "disburseLoan") == [("INVALID_TRANSITION", None)]


async def three_month_loan(engine, disbursed_on: date):
    """1,000.00 at 12 % over 3 months (30/360): instalments 340.02, 340.02, 340.03."""
    return await create_loan(
        engine, product_code="SMALL-3", amount="1000.00", term_months=3, disbursed_on=disbursed_on
    )


async def test_payments_go_to_the_oldest_instalment_interest_first(client, engine, products):
    loan = await three_month_loan(engine, DAY - timedelta(days=70))
    loan_id = gid("Loan", loan.id)
    # a partial payment covers the first instalment's interest, then some principal
    first = ok(
        await gql(
            client,
            RECORD,
            {
                "input": {
                    "loanId": loan_id,
                    "amount": "100.00",
                    "receivedOn": (DAY - timedelta(days=40)).isoformat(),
                    "reference": "TX-1",
                }
            },
        ),
        "recordPayment",
    )
    assert first["payment"]["allocations"] == [
        {
            "installment": {"number": 1},
            "principal": "90.00",
            "interest": "10.00",
            "amount": "100.00",
        },
    ]
    assert first["payment"]["recordedBy"] == "admin"  # the API key's name
    # a larger one finishes the first instalment and spills into the second
    second = ok(
        await gql(client, RECORD, {"input": {"loanId": loan_id, "amount": "500.00"}}),
        "recordPayment",
    )
    assert second["payment"]["receivedOn"] == DAY.isoformat()
    assert second["payment"]["allocations"] == [
        {
            "installment": {"number": 1},
            "principal": "240.02",
            "interest": "0.00",
            "amount": "240.02",
        },
        {
            "installment": {"number": 2},
            "principal": "253.28",
            "interest": "6.70",
            "amount": "259.98",
        },
    ]
    assert second["loan"]["status"] == "ACTIVE"
    assert second["loan"]["payoffAmount"] == "420.07"
    # paying exactly what is left pays the loan off
    last = ok(
        await gql(client, RECORD, {"input": {"loanId": loan_id, "amount": "420.07"}}),
        "recordPayment",
    )
    assert last["loan"]["status"] == "PAID_OFF"
    assert last["loan"]["payoffAmount"] == "0.00"
    assert last["loan"]["outstandingPrincipal"] == "0.00"


async def test_overpayment_names_the_payoff_amount_and_writes_nothing(client, engine, products):
    loan = await three_month_loan(engine, DAY - timedelta(days=10))
    body = await gql(
        client, RECORD, {"input": {"loanId": gid("Loan", loan.id), "amount": "1020.08"}}
    )
    assert failed(body, "recordPayment") == [("OVERPAYMENT", ["input", "amount"])]
    assert "1020.07" in body["data"]["recordPayment"]["userErrors"][0]["message"]
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM payments")) == 0


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        (
            {"receivedOn": (DAY - timedelta(days=11)).isoformat()},
            "PAYMENT_DATE_INVALID",
            ["input", "receivedOn"],
        ),
        (
            {"receivedOn": (DAY + timedelta(days=1)).isoformat()},
            "PAYMENT_DATE_INVALID",
            ["input", "receivedOn"],
        ),
        ({"amount": "10.001"}, "VALIDATION_FAILED", ["input", "amount"]),
        ({"amount": "-5"}, "VALIDATION_FAILED", ["input", "amount"]),
        ({"amount": "NaN"}, "VALIDATION_FAILED", ["input", "amount"]),
        ({"loanId": to_global_id("Payment", 1)}, "VALIDATION_FAILED", ["input", "loanId"]),
        ({"loanId": to_global_id("Loan", 10**9)}, "NOT_FOUND", ["input", "loanId"]),
    ],
)
async def test_payment_bad_input_writes_nothing(client, engine, products, overrides, code, field):
    loan = await three_month_loan(engine, DAY - timedelta(days=10))
    body = await gql(
        client, RECORD, {"input": {"loanId": gid("Loan", loan.id), "amount": "50"} | overrides}
    )
    assert failed(body, "recordPayment") == [(code, field)]
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM payments")) == 0
        assert await connection.scalar(text("SELECT count(*) FROM payment_allocations")) == 0


async def test_payment_on_a_loan_that_is_not_active(client, engine, products):
    approved = await create_loan(engine)
    body = await gql(
        client, RECORD, {"input": {"loanId": gid("Loan", approved.id), "amount": "50"}}
    )
    assert failed(body, "recordPayment") == [("INVALID_TRANSITION", None)]
    paid = await three_month_loan(engine, DAY - timedelta(days=10))
    await pay(engine, paid.id, "1020.07", DAY)
    body = await gql(client, RECORD, {"input": {"loanId": gid("Loan", paid.id), "amount": "1"}})
    assert failed(body, "recordPayment") == [("INVALID_TRANSITION", None)]


async def test_a_reference_is_recorded_once_per_loan(client, engine, products):
    loan = await three_month_loan(engine, DAY - timedelta(days=10))
    variables = {"input": {"loanId": gid("Loan", loan.id), "amount": "10", "reference": "BANK-9"}}
    ok(await gql(client, RECORD, variables), "recordPayment")
    body = await gql(client, RECORD, variables)
    assert failed(body, "recordPayment") == [
        ("DUPLICATE_PAYMENT_REFERENCE", ["input", "reference"])
    ]


async def test_reversal_keeps_the_payment_and_reapplies_the_rest(client, engine, products):
    loan = await three_month_loan(engine, DAY - timedelta(days=70))
    first = await pay(engine, loan.id, "340.02", DAY - timedelta(days=35))
    await pay(engine, loan.id, "340.02", DAY - timedelta(days=5))
    # when the first payment is reversed
    body = await gql(
        client,
        REVERSE,
        {"input": {"paymentId": gid("Payment", first.payment.id), "reason": "Bounced cheque"}},
    )
    reversed_ = ok(body, "reversePayment")
    assert reversed_["payment"]["reversed"] is True
    assert reversed_["payment"]["reversedReason"] == "Bounced cheque"
    assert reversed_["payment"]["allocations"] == []
    # then the remaining payment now pays the first instalment, and nothing was deleted
    read = (await gql(client, LOAN, {"id": gid("Loan", loan.id)}))["data"]["loan"]
    assert read["payments"]["totalCount"] == 2
    live = [e["node"] for e in read["payments"]["edges"] if not e["node"]["reversed"]]
    assert [a["installment"]["number"] for a in live[0]["allocations"]] == [1]
    rows = read["schedule"]["installments"]
    assert rows[0]["amountOutstanding"] == "0.00"
    assert rows[0]["paidOn"] == (DAY - timedelta(days=5)).isoformat()
    assert rows[1]["status"] == "OVERDUE"
    # and reversing it again is refused
    again = await gql(client, REVERSE, {"input": {"paymentId": gid("Payment", first.payment.id)}})
    assert failed(again, "reversePayment") == [("ALREADY_REVERSED", ["input", "paymentId"])]


async def test_reversing_on_a_paid_off_loan_reopens_it(client, engine, products):
    loan = await three_month_loan(engine, DAY - timedelta(days=10))
    done = await pay(engine, loan.id, "1020.07", DAY)
    assert done.loan.status.value == "PAID_OFF"
    body = await gql(client, REVERSE, {"input": {"paymentId": gid("Payment", done.payment.id)}})
    payload = ok(body, "reversePayment")
    assert payload["loan"] == {"status": "ACTIVE", "payoffAmount": "1020.07"}


async def test_reversing_an_unknown_payment(client, products):
    body = await gql(client, REVERSE, {"input": {"paymentId": gid("Payment", 12345)}})
    assert failed(body, "reversePayment") == [("NOT_FOUND", ["input", "paymentId"])]


async def test_a_backdated_payment_is_applied_before_later_ones(client, engine, products):
    loan = await three_month_loan(engine, DAY - timedelta(days=70))
    later = await pay(engine, loan.id, "340.02", DAY - timedelta(days=2))
    await pay(engine, loan.id, "340.02", DAY - timedelta(days=40))
    read = (await gql(client, LOAN, {"id": gid("Loan", loan.id)}))["data"]["loan"]
    by_amount = {
        e["node"]["allocations"][0]["installment"]["number"] for e in read["payments"]["edges"]
    }
    assert by_amount == {1, 2}
    # the payment received later is now applied to the second instalment
    async with engine.connect() as connection:
        number = await connection.scalar(
            text(
                "SELECT i.number FROM payment_allocations a JOIN installments i "
                "ON i.id = a.installment_id WHERE a.payment_id = :p"
            ),
            {"p": later.payment.id},
        )
    assert number == 2


async def test_concurrent_payments_on_one_loan_are_all_allocated(client, engine, products):
    # given a loan of 1,000.00 (payoff 1,020.07)
    loan = await three_month_loan(engine, DAY - timedelta(days=10))
    loan_id = gid("Loan", loan.id)

    # when 20 agents record 50.00 each at the same moment
    async def one(i: int):
        return await gql(
            client, RECORD, {"input": {"loanId": loan_id, "amount": "50.00", "reference": f"C{i}"}}
        )

    results = await asyncio.gather(*(one(i) for i in range(20)))

    # then all 20 are recorded and allocated exactly once, with nothing lost
    assert all(r["data"]["recordPayment"]["userErrors"] == [] for r in results)
    async with engine.connect() as connection:
        paid = await connection.scalar(text("SELECT sum(amount) FROM payments"))
        allocated = await connection.scalar(
            text("SELECT sum(principal + interest) FROM payment_allocations")
        )
        version = await connection.scalar(text("SELECT version FROM loans"))
    assert paid == allocated == Decimal("1000.00")
    assert version == 2 + 20  # approved, disbursed, then one bump per payment
    read = (await gql(client, LOAN, {"id": loan_id}))["data"]["loan"]
    assert read["payoffAmount"] == "20.07"
    assert read["status"] == "ACTIVE"
