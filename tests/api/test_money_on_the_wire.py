"""Every amount on the wire has exactly its currency's minor digits, stored or computed."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from graphql import GraphQLObjectType, get_named_type

from graph.ids import to_global_id
from graph.schema import schema
from lending.clock import today
from lending.money import minor_digits
from lending.terms import DayCount
from tests.dbfixtures import gql
from tests.factories import create_application, create_loan, create_product, decide, pay

DAY = today()
# Decimal fields that are not amounts: rates in percent, scores and their factors.
NOT_MONEY = {"annualInterestRate", "referBelowScore", "score", "contribution"}
# Not amounts: a rate, and values before rounding (shown to 10 places, whatever the currency).
NOT_MONEY |= {"annualRate", "interestExact", "accruedExact", "accruedFraction"}
# Not amounts: ratios (portfolio at risk, decision rates), scores and score bands.
NOT_MONEY |= {"par30", "par60", "par90", "approvalRate", "badRate", "writtenOffRate"}
NOT_MONEY |= {"meanScore", "medianScore", "lower", "upper"}

INSTALLMENT = """__typename principalDue interestDue totalDue balanceAfter principalPaid
                 interestPaid amountOutstanding
                 calculation { __typename openingBalance interestRounded principal
                               closingBalance }"""
LOAN = f"""
__typename currency principal writtenOffAmount settlementRebate outstandingPrincipal payoffAmount
delinquency {{ __typename overdueAmount oldestOverdueInstallment {{ {INSTALLMENT} }} }}
schedule {{ __typename totalPrincipal totalInterest totalPayable installments {{ {INSTALLMENT} }} }}
payments(first: 3) {{ edges {{ node {{
  __typename amount allocations {{ __typename principal interest amount interestWaived }}
}} }} }}
application {{
  __typename amountRequested declaredMonthlyIncome
  product {{ __typename currency minAmount maxAmount }}
  decisions {{ __typename approvedAmount }}
}}
"""
# Two roots: `loans` compiles; `settlementQuote` is answered per field, and so is its root.
READ = f"""
query Amounts {{
  loans(first: 10) {{ edges {{ node {{ {LOAN} }} }} }}
  quoted: loans(first: 10) {{ edges {{ node {{
    __typename currency
    settlementQuote {{ __typename amount principal accruedInterest overdue rebate
      calculation {{ __typename scheduledInterest accruedRounded interestAlreadyPaid
                    accruedInterest rebate }} }}
  }} }} }}
}}
"""
PREVIEW = """
query($code: String!, $amount: Decimal!) {
  previewSchedule(input: { productCode: $code, amount: $amount, termMonths: 12 }) {
    userErrors { code message }
    schedule {
      __typename totalPrincipal totalInterest totalPayable
      installments { __typename principalDue interestDue totalDue balanceAfter }
    }
  }
}
"""
PORTFOLIO = """
query($asOf: Date!) {
  portfolio(asOf: $asOf) {
    __typename currency outstandingPrincipal overdueAmount
    buckets { __typename outstandingPrincipal overdueAmount }
    disbursed { __typename amount } collected { __typename principal interest }
    writtenOff { __typename amount }
  }
}
"""
SETTLE = """
mutation($id: ID!, $amount: Decimal!) {
  settleLoan(input: { loanId: $id, amount: $amount }) { userErrors { code message } }
}
"""
WRITE_OFF = """
mutation($id: ID!) {
  writeOffLoan(input: { loanId: $id, reason: "Gone." }) { userErrors { code message } }
}
"""
QUOTE = "query($id: ID!) { loan(id: $id) { settlementQuote { amount } } }"

CURRENCIES = {
    # code: (currency, amount lent, a payment, declared income)
    "YEN": ("JPY", "1000000", "30000", "400000"),
    "DOLLARS": ("USD", "10000.00", "300.00", "4000.00"),
}


def money_fields() -> set[tuple[str, str]]:
    """(type, field) of every amount an answer can hold, found by introspection."""
    found = set()
    for named in schema._schema.type_map.values():
        if not isinstance(named, GraphQLObjectType) or named.name.startswith("__"):
            continue
        for name, field in named.fields.items():
            if get_named_type(field.type).name == "Decimal" and name not in NOT_MONEY:
                found.add((named.name, name))
    return found


def amounts(value: Any, currency: str | None, out: list[tuple[str, str, str, str]]) -> None:
    """(type, field, currency, text) of every amount in an answer, in its object's currency
    (the nearest enclosing object that names one)."""
    if isinstance(value, list):
        for item in value:
            amounts(item, currency, out)
        return
    if not isinstance(value, dict):
        return
    currency = value.get("currency", currency)
    type_name = value.get("__typename")
    for key, item in value.items():
        if type_name and isinstance(item, str) and (type_name, key) in MONEY:
            assert currency is not None, (type_name, key)
            out.append((type_name, key, currency, item))
        else:
            amounts(item, currency, out)


MONEY = money_fields()


def written_with_minor_digits(text: str, currency: str) -> bool:
    digits = minor_digits(currency)
    return re.fullmatch(r"-?[0-9]+" + (rf"\.[0-9]{{{digits}}}" if digits else ""), text) is not None


async def seed(client, engine) -> None:
    """For each currency: an overdue loan with a payment, a written-off one, a settled one."""
    for code, (currency, lent, paid, income) in CURRENCIES.items():
        await create_product(
            engine,
            code=code,
            currency=currency,
            min_amount=Decimal(lent) / 10,
            max_amount=Decimal(lent) * 10,
            day_count=DayCount.ACTUAL_365,
            annual_interest_rate=Decimal("17.9"),
        )
        loans = [
            await create_loan(
                engine,
                product_code=code,
                amount=lent,
                declared_monthly_income=income,
                term_months=12,
                disbursed_on=DAY - timedelta(days=100),
            )
            for _ in range(3)
        ]
        for loan in loans:
            await pay(engine, loan.id, paid, DAY - timedelta(days=10))
        # and an approval of less than asked for, whose loan is not disbursed
        asked = await create_application(engine, product_code=code, amount=lent, term_months=12)
        await decide(engine, asked.id, "APPROVED", approved_amount=Decimal(lent) / 2)
        _, written_off, settled = (to_global_id("Loan", loan.id) for loan in loans)
        body = await gql(client, WRITE_OFF, {"id": written_off})
        assert body["data"]["writeOffLoan"]["userErrors"] == [], body
        quote = (await gql(client, QUOTE, {"id": settled}))["data"]["loan"]["settlementQuote"]
        body = await gql(client, SETTLE, {"id": settled, "amount": quote["amount"]})
        assert body["data"]["settleLoan"]["userErrors"] == [], body


async def test_every_amount_has_exactly_its_currency_minor_digits(client, per_field_client, engine):
    # given loans in yen (no minor unit) and in dollars (cents), in every state with amounts
    await seed(client, engine)

    # when every amount of every type is read on both paths, and schedules are previewed
    answers = []
    for path in (per_field_client, client, client):
        body = await gql(path, READ)
        assert "errors" not in body, body
        answers.append(body["data"])
        for code, (_, lent, _, _) in CURRENCIES.items():
            preview = await gql(path, PREVIEW, {"code": code, "amount": lent})
            assert preview["data"]["previewSchedule"]["userErrors"] == [], preview
            answers.append({"currency": CURRENCIES[code][0], "preview": preview["data"]})
        body = await gql(path, PORTFOLIO, {"asOf": DAY.isoformat()})
        assert "errors" not in body, body
        answers.append(body["data"])
    assert answers[0] == answers[4] == answers[8]  # both paths say the same

    # then each amount is written with exactly its currency's minor digits
    found: list[tuple[str, str, str, str]] = []
    amounts(answers, None, found)
    wrong = [a for a in found if not written_with_minor_digits(a[3], a[2])]
    assert not wrong, wrong
    # and every amount field of the schema was read, in both currencies
    for currency, _, _, _ in CURRENCIES.values():
        read = {(t, f) for t, f, c, _ in found if c == currency}
        assert read == MONEY, MONEY - read
