"""Every cent explained: an instalment's and a settlement quote's calculation, as a person would
check them by hand."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from graph.ids import to_global_id
from lending.clock import today
from lending.terms import DayCount, RepaymentFrequency
from tests.dbfixtures import both_paths, gql
from tests.factories import create_loan, create_product, pay

DAY = today()
CENT = Decimal("0.01")

SCHEDULE = """
query S($id: ID!) {
  loan(id: $id) {
    principal annualInterestRate
    schedule { installments {
      number dueDate principalDue interestDue balanceAfter
      calculation {
        openingBalance periodStart periodEnd annualRate dayCountConvention days daysInYear
        interestExact interestRounded principal closingBalance rounding { mode places }
      }
    } }
  }
}
"""

QUOTE = """
query Q($id: ID!, $asOf: Date) {
  loan(id: $id) {
    schedule { installments { number dueDate interestDue } }
    settlementQuote(asOf: $asOf) {
      amount principal accruedInterest overdue rebate validOn
      calculation {
        installmentNumber periodStart periodEnd dayCountConvention periodDays elapsedDays
        accruedFraction scheduledInterest accruedExact accruedRounded interestAlreadyPaid
        accruedInterest rebate rounding { mode places }
      }
    }
  }
}
"""

TERMS = {
    "annuity, monthly, 30/360": {},
    "equal principal, weekly, actual/365": {
        "amortization": "EQUAL_PRINCIPAL",
        "frequency": RepaymentFrequency.WEEKLY,
        "day_count": DayCount.ACTUAL_365,
    },
    "annuity, fortnightly, 30/360": {"frequency": RepaymentFrequency.BIWEEKLY},
}


def rounded(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


@pytest.mark.parametrize("terms", list(TERMS))
async def test_each_instalment_is_worked_out_from_the_balance_before_it(
    client, per_field_client, engine, terms
):
    from lending.terms import AmortizationMethod

    values = dict(TERMS[terms])
    if "amortization" in values:
        values["amortization"] = AmortizationMethod(values["amortization"])
    await create_product(engine, code="CALC", annual_interest_rate=Decimal("13.75"), **values)
    loan = await create_loan(
        engine,
        product_code="CALC",
        amount=Decimal("4321.09"),
        term_months=7,
        disbursed_on=DAY - timedelta(days=20),
    )
    body = await both_paths(
        client, per_field_client, SCHEDULE, {"id": to_global_id("Loan", loan.id)}
    )
    found = body["data"]["loan"]
    rows = found["schedule"]["installments"]
    rate = Decimal(found["annualInterestRate"])
    opening = Decimal(found["principal"])
    start = loan.disbursed_on.isoformat()
    for row in rows:
        c = row["calculation"]
        assert Decimal(c["openingBalance"]) == opening
        assert (c["periodStart"], c["periodEnd"]) == (start, row["dueDate"])
        assert Decimal(c["annualRate"]) == rate
        exact = opening * rate / 100 * c["days"] / c["daysInYear"]
        # shown cut to 10 places: within 1e-10 below the value computed here
        assert Decimal(0) <= exact - Decimal(c["interestExact"]) < Decimal("1e-10")
        assert Decimal(c["interestRounded"]) == rounded(exact) == Decimal(row["interestDue"])
        assert Decimal(c["principal"]) == Decimal(row["principalDue"])
        assert Decimal(c["closingBalance"]) == opening - Decimal(c["principal"])
        assert Decimal(c["closingBalance"]) == Decimal(row["balanceAfter"])
        assert c["rounding"] == {"mode": "HALF_EVEN", "places": 2}
        opening, start = Decimal(c["closingBalance"]), row["dueDate"]
    assert opening == 0
    first = rows[0]["calculation"]
    if "actual" in terms:
        assert first["dayCountConvention"] == "ACTUAL_365"
        assert first["daysInYear"] == 365
        assert all(r["calculation"]["days"] == 7 for r in rows)  # weekly: 7 calendar days
    else:
        assert first["dayCountConvention"] == "THIRTY_360"
        days = 14 if "fortnightly" in terms else 30
        assert (first["days"], first["daysInYear"]) == (days, 364 if days == 14 else 360)


async def test_a_quote_shows_how_the_current_periods_interest_accrued(client, engine):
    await create_product(engine)  # PERSONAL-USD: 12.5 %, annuity, monthly, 30/360
    loan = await create_loan(engine, amount=Decimal("6000.00"), term_months=12,
                             disbursed_on=DAY - timedelta(days=75))  # fmt: skip
    await pay(engine, loan.id, "400.00", DAY - timedelta(days=40))
    body = await gql(client, QUOTE, {"id": to_global_id("Loan", loan.id)})
    assert "errors" not in body, body
    quote = body["data"]["loan"]["settlementQuote"]
    c = quote["calculation"]
    rows = body["data"]["loan"]["schedule"]["installments"]
    current = next(r for r in rows if r["dueDate"] > DAY.isoformat())
    assert c["installmentNumber"] == current["number"]
    assert c["periodEnd"] == current["dueDate"]
    assert Decimal(c["scheduledInterest"]) == Decimal(current["interestDue"])
    assert c["dayCountConvention"] == "THIRTY_360"
    assert 0 <= c["elapsedDays"] <= c["periodDays"] == 30
    fraction = Decimal(c["elapsedDays"]) / c["periodDays"]
    assert Decimal(0) <= fraction - Decimal(c["accruedFraction"]) < Decimal("1e-10")
    exact = Decimal(c["scheduledInterest"]) * c["elapsedDays"] / c["periodDays"]
    assert Decimal(c["accruedRounded"]) == rounded(exact)
    assert Decimal(0) <= exact - Decimal(c["accruedExact"]) < Decimal("1e-10")
    charged = max(Decimal(0), Decimal(c["accruedRounded"]) - Decimal(c["interestAlreadyPaid"]))
    assert Decimal(c["accruedInterest"]) == charged == Decimal(quote["accruedInterest"])
    assert c["rebate"] == quote["rebate"]
    later = sum(Decimal(r["interestDue"]) for r in rows if r["dueDate"] > current["dueDate"])
    assert Decimal(quote["rebate"]) == later + Decimal(current["interestDue"]) - charged
    amount = Decimal(quote["overdue"]) + Decimal(quote["principal"]) + charged
    assert Decimal(quote["amount"]) == amount
