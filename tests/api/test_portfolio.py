"""The portfolio on a date: figures a person can check on a small book, and the statement's
sums equal to the rules' loan-by-loan reference over generated books (several currencies,
back-dated payments, reversals, early settlements, write-offs, cancellations), exactly."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.repositories import portfolio as repo
from db.session import create_sessionmaker
from graph.ids import to_global_id
from lending.clock import today
from lending.errors import DomainError
from lending.money import round_money
from lending.portfolio import CurrencyTotals, LoanFacts, fold, position
from lending.services import loans as loan_service
from lending.states import LoanStatus
from tests.api.test_settled_on import reverse_one
from tests.dbfixtures import TABLES, gql
from tests.factories import TESTER, create_loan, create_product, ledgers, migration, pay

DAY = today()
MIGRATION = "2026_12_03-0010_portfolio_reads.py"

PORTFOLIO = """
query P($asOf: Date!, $filter: PortfolioFilterInput) {
  portfolio(asOf: $asOf, filter: $filter) {
    currency asOf
    loansByStatus { status loans }
    outstandingPrincipal overdueAmount par30 par60 par90
    buckets { bucket loans outstandingPrincipal overdueAmount }
    disbursed { loans amount }
    collected { principal interest }
    writtenOff { loans amount }
  }
}
"""


def answer(totals: CurrencyTotals, as_of: date) -> dict[str, Any]:
    """What the API should answer for a currency's totals."""
    return {
        "currency": totals.currency,
        "asOf": as_of.isoformat(),
        "loansByStatus": [
            {"status": s.value, "loans": n} for s, n in totals.loans_by_state.items()
        ],
        "outstandingPrincipal": str(totals.outstanding_principal),
        "overdueAmount": str(totals.overdue_amount),
        "par30": str(totals.par(30)),
        "par60": str(totals.par(60)),
        "par90": str(totals.par(90)),
        "buckets": [
            {
                "bucket": bucket.value,
                "loans": b.loans,
                "outstandingPrincipal": str(b.outstanding_principal),
                "overdueAmount": str(b.overdue_amount),
            }
            for bucket, b in totals.buckets.items()
        ],
        "disbursed": {"loans": totals.disbursed_loans, "amount": str(totals.disbursed_amount)},
        "collected": {
            "principal": str(totals.collected_principal),
            "interest": str(totals.collected_interest),
        },
        "writtenOff": {"loans": totals.written_off_loans, "amount": str(totals.written_off_amount)},
    }


async def reference(engine: AsyncEngine, as_of: date, flt: repo.PortfolioFilter) -> list[Any]:
    """The portfolio by the rules, loan by loan, from the stored instalments and allocations."""
    async with engine.connect() as connection:
        loans = (
            await connection.execute(
                text(
                    "SELECT l.id, l.currency, l.principal, l.status::text AS status, "
                    "l.disbursed_on, (l.approved_at AT TIME ZONE 'UTC')::date AS approved_on, "
                    "(l.closed_at AT TIME ZONE 'UTC')::date AS closed_on, p.code "
                    "FROM loans l JOIN loan_applications a ON a.id = l.application_id "
                    "JOIN loan_products p ON p.id = a.product_id"
                )
            )
        ).all()
    books = await ledgers(engine)
    positions = []
    for loan in loans:
        if flt.product_codes is not None and loan.code not in flt.product_codes:
            continue
        if flt.disbursed_from is not None and not (
            loan.disbursed_on is not None and loan.disbursed_on >= flt.disbursed_from
        ):
            continue
        if flt.disbursed_to is not None and not (
            loan.disbursed_on is not None and loan.disbursed_on <= flt.disbursed_to
        ):
            continue
        facts = LoanFacts(
            loan.currency,
            loan.principal,
            LoanStatus(loan.status),
            loan.approved_on,
            loan.disbursed_on,
            loan.closed_on,
        )
        found = position(facts, books.due.get(loan.id, []), books.paid.get(loan.id, []), as_of)
        if found is not None:
            positions.append(found)
    return fold(positions)


async def products(engine, rates: dict[tuple[str, str], str]) -> None:
    """Products of (code, currency) at their annual rate, lending 100 to 5,000,000."""
    for (code, currency), rate in rates.items():
        await create_product(
            engine,
            code=code,
            currency=currency,
            min_amount=Decimal("100"),
            max_amount=Decimal("5000000"),
            annual_interest_rate=Decimal(rate),
            min_term_months=1,
        )


@pytest.fixture
async def flat(engine):
    # 1,200.00 at 0 % over 12 months: every instalment is exactly 100.00
    await products(engine, {("FLAT", "USD"): "0", ("FLAT-JPY", "JPY"): "0"})


async def loan_on(engine, days_ago: int, code: str = "FLAT", amount: str = "1200.00"):
    disbursed = DAY - timedelta(days=days_ago)
    return await create_loan(
        engine,
        product_code=code,
        amount=amount,
        term_months=12,
        disbursed_on=disbursed,
        first_due_date=disbursed + timedelta(days=30),
    )


async def test_a_small_book_by_hand(client, engine, flat):
    await loan_on(engine, 125)  # due 95, 65, 35 and 5 days ago: 95 days past due
    behind = await loan_on(engine, 65)  # due 35 and 5 days ago
    await pay(engine, behind.id, "100.00", DAY - timedelta(days=20))  # settles the first
    paid_off = await loan_on(engine, 40)
    await pay(engine, paid_off.id, "1200.00", DAY - timedelta(days=1))
    gone = await loan_on(engine, 200)
    async with create_sessionmaker(engine)() as session, session.begin():
        await loan_service.write_off_loan(session, TESTER, loan_id=gone.id, reason="Absconded.")
    await create_loan(engine, product_code="FLAT", amount="500.00", term_months=6)  # approved
    await loan_on(engine, 10, code="FLAT-JPY", amount="120000")

    body = await gql(client, PORTFOLIO, {"asOf": DAY.isoformat()})
    assert "errors" not in body, body
    jpy, usd = body["data"]["portfolio"]
    assert (jpy["currency"], usd["currency"]) == ("JPY", "USD")
    assert {s["status"]: s["loans"] for s in usd["loansByStatus"]} == {
        "APPROVED": 1,
        "ACTIVE": 2,
        "PAID_OFF": 1,
        "WRITTEN_OFF": 1,
        "CANCELLED": 0,
    }
    assert usd["outstandingPrincipal"] == "2300.00"  # 1,200.00 + 1,100.00
    assert usd["overdueAmount"] == "500.00"  # four instalments of one, one of the other
    # 1,200.00 of 2,300.00 is more than 90 days late: 0.52173913… rounds to 0.5217
    assert (usd["par30"], usd["par60"], usd["par90"]) == ("0.5217", "0.5217", "0.5217")
    buckets = {b["bucket"]: b for b in usd["buckets"]}
    assert buckets["DPD_91_PLUS"] == {
        "bucket": "DPD_91_PLUS",
        "loans": 1,
        "outstandingPrincipal": "1200.00",
        "overdueAmount": "400.00",
    }
    assert buckets["DPD_1_30"]["loans"] == 1
    assert buckets["CURRENT"]["loans"] == 0
    assert usd["disbursed"] == {"loans": 4, "amount": "4800.00"}
    assert usd["collected"] == {"principal": "1300.00", "interest": "0.00"}
    # written off today, with its 1,200.00 unpaid
    assert usd["writtenOff"] == {"loans": 1, "amount": "1200.00"}
    assert jpy["outstandingPrincipal"] == "120000"
    assert (jpy["par30"], jpy["overdueAmount"]) == ("0.0000", "0")

    # 21 days ago: the payment of 20 days ago was not received yet, the loan written off today
    # was active, the paid-off one not yet repaid, and the approved one not yet approved
    before = DAY - timedelta(days=21)
    # and the yen loan was not approved yet: no entry in yen
    (usd,) = (await gql(client, PORTFOLIO, {"asOf": before.isoformat()}))["data"]["portfolio"]
    assert {s["status"]: s["loans"] for s in usd["loansByStatus"]}["ACTIVE"] == 4
    assert usd["outstandingPrincipal"] == "4800.00"
    assert usd["collected"] == {"principal": "0.00", "interest": "0.00"}
    assert usd["writtenOff"] == {"loans": 0, "amount": "0.00"}

    # loans of one product, disbursed within 100 days
    flt = {"productCodes": ["FLAT"], "disbursedFrom": (DAY - timedelta(days=100)).isoformat()}
    found = (await gql(client, PORTFOLIO, {"asOf": DAY.isoformat(), "filter": flt}))["data"]
    (usd,) = found["portfolio"]
    assert usd["outstandingPrincipal"] == "1100.00"
    assert usd["disbursed"] == {"loans": 2, "amount": "2400.00"}


async def test_the_statement_answers_as_the_rules_over_generated_books(engine, client):
    codes = {"G-USD": "USD", "G-JPY": "JPY", "G-EUR": "EUR"}
    rates = {"G-USD": "14.5", "G-JPY": "14.5", "G-EUR": "0"}
    await products(engine, {(code, currency): rates[code] for code, currency in codes.items()})
    sessions = create_sessionmaker(engine)
    compared, books = 0, 4
    steps = {"paid": 0, "reversed": 0, "settled": 0, "written off": 0, "cancelled": 0}
    for book in range(books):
        rng = random.Random(2900 + book)
        loans = []
        for _ in range(10):
            code = rng.choice(list(codes))
            amount = rng.randint(5, 40) * (10_000 if codes[code] == "JPY" else 100)
            if rng.random() < 0.15:
                loan = await create_loan(engine, product_code=code, amount=amount, term_months=6)
                if rng.random() < 0.5:
                    async with sessions() as session, session.begin():
                        await loan_service.cancel_loan(
                            session, TESTER, loan_id=loan.id, reason="Changed their mind."
                        )
                    steps["cancelled"] += 1
                continue
            days_ago = rng.randint(20, 420)
            loans.append(
                await create_loan(
                    engine,
                    product_code=code,
                    amount=amount,
                    term_months=rng.choice([3, 6, 12]),
                    disbursed_on=DAY - timedelta(days=days_ago),
                )
            )
        await service_at_random(engine, client, loans, rng, steps, 60)
        disbursals = sorted(loan.disbursed_on for loan in loans)
        filters = [
            repo.PortfolioFilter(),
            repo.PortfolioFilter(product_codes=("G-USD", "G-EUR")),
            repo.PortfolioFilter(disbursed_from=disbursals[len(disbursals) // 2]),
            repo.PortfolioFilter(
                disbursed_from=disbursals[1], disbursed_to=disbursals[-2], product_codes=("G-JPY",)
            ),
        ]
        days = [DAY - timedelta(days=n) for n in range(0, 450, 15)] + [DAY + timedelta(days=40)]
        for flt in filters:
            for day in days:
                async with sessions() as session:
                    found = await repo.portfolio(session, day, flt)
                assert found == await reference(engine, day, flt), (book, day, flt)
                compared += 1
        assert await paid_totals_disagree(engine) == [], book
        for day in days[::6]:
            body = await gql(client, PORTFOLIO, {"asOf": day.isoformat()})
            totals = await reference(engine, day, repo.PortfolioFilter())
            expected = [answer(t, day) for t in totals]
            assert "errors" not in body, body
            assert body["data"] == {"portfolio": expected}
        await empty_but_products(engine)  # the next book on the same products
    print(books, compared, steps)
    assert steps["paid"] >= 60, steps
    assert steps["reversed"] >= 5, steps
    assert steps["written off"] >= 2, steps
    assert steps["settled"] >= 1, steps


async def paid_totals_disagree(engine: AsyncEngine) -> list[Any]:
    """Loans whose kept paid totals differ from their allocations' sums, before and after the
    migration's backfill recomputes them from the allocations."""
    scan = migration(MIGRATION).PAID
    differ = (
        f"SELECT l.id, l.principal_paid, l.interest_paid, s.principal, s.interest FROM loans l "
        f"JOIN ({scan}) s ON s.id = l.id "
        f"WHERE (l.principal_paid, l.interest_paid) <> (s.principal, s.interest)"
    )
    async with engine.begin() as connection:
        kept = (await connection.execute(text(differ))).all()
        await connection.execute(text("UPDATE loans SET principal_paid = 0, interest_paid = 0"))
        await connection.execute(text(migration(MIGRATION).BACKFILL))
        filled = (await connection.execute(text(differ))).all()
    return [*kept, *filled]


async def empty_but_products(engine: AsyncEngine) -> None:
    """Every table emptied but the products'."""
    tables = [t for t in TABLES.split(", ") if t != "loan_products"]
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))


async def service_at_random(
    engine: AsyncEngine,
    client: Any,
    loans: list[Any],
    rng: random.Random,
    steps: dict[str, int],
    actions: int,
) -> None:
    """``actions`` random steps on the loans: back-dated payments mostly, reversals, write-offs
    and (with a ``client``) early settlements; those the rules refuse are skipped. ``steps``
    counts what was done."""
    sessions = create_sessionmaker(engine)
    for _ in range(actions):
        loan = rng.choice(loans)
        action = rng.random()
        try:
            if action < 0.15:
                await reverse_one(sessions, loan.id, rng)
                steps["reversed"] += 1
            elif action < 0.2:
                async with sessions() as session, session.begin():
                    await loan_service.write_off_loan(
                        session, TESTER, loan_id=loan.id, reason="Uncollectable."
                    )
                steps["written off"] += 1
            elif action < 0.25 and client is not None:
                steps["settled"] += await settle(client, loan.id)
            else:
                share = Decimal(rng.randint(5, 60)) / 100
                amount = round_money(loan.principal * share, loan.currency)
                received = loan.disbursed_on + timedelta(days=rng.randint(0, 420))
                await pay(engine, loan.id, str(amount), min(received, DAY))
                steps["paid"] += 1
        except (DomainError, LookupError):  # not payable, nothing to reverse, closed
            pass


SETTLE = """mutation S($input: SettleLoanInput!) {
  settleLoan(input: $input) { userErrors { code } } }"""
QUOTE = "query Q($id: ID!) { loan(id: $id) { settlementQuote { amount } } }"


async def settle(client, loan_id: int) -> int:
    """Settle the loan today when it can be (1), else nothing (0)."""
    gid = to_global_id("Loan", loan_id)
    quote = (await gql(client, QUOTE, {"id": gid}))["data"]["loan"]["settlementQuote"]
    if quote is None:
        return 0
    done = await gql(client, SETTLE, {"input": {"loanId": gid, "amount": quote["amount"]}})
    return 0 if done["data"]["settleLoan"]["userErrors"] else 1


async def test_one_statement(client, engine, flat, sql):
    await loan_on(engine, 70)
    await loan_on(engine, 20, code="FLAT-JPY", amount="120000")
    sql.statements.clear()
    body = await gql(client, PORTFOLIO, {"asOf": DAY.isoformat()})
    assert [p["currency"] for p in body["data"]["portfolio"]] == ["JPY", "USD"]
    assert len(sql.statements) == 1, sql.statements


async def test_bad_filters_are_refused(client, flat):
    cases = [
        ({"disbursedFrom": "2026-05-02", "disbursedTo": "2026-05-01"}, "`disbursedFrom` must"),
        ({"productCodes": ["X"] * 101}, "at most 100 products"),
    ]
    for flt, message in cases:
        body = await gql(client, PORTFOLIO, {"asOf": DAY.isoformat(), "filter": flt})
        assert body["data"] is None
        assert message in body["errors"][0]["message"], body
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_the_calendars_first_and_last_days_are_answered(client, engine, flat):
    # asyncpg sends 9999-12-31 as 'infinity', from which no day can be counted: sent as text
    await loan_on(engine, 70)
    for day in ("9999-12-31", "0001-01-01"):
        flt = {"disbursedFrom": "0001-01-01", "disbursedTo": "9999-12-31"}
        body = await gql(client, PORTFOLIO, {"asOf": day, "filter": flt})
        assert "errors" not in body, body
    last = await gql(client, PORTFOLIO, {"asOf": "9999-12-31"})
    assert last["data"]["portfolio"][0]["buckets"][-1]["loans"] == 1  # long past due by then
