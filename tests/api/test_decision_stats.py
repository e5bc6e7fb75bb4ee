"""How decisions turned out: figures a person can check on a few decisions, and the statement's
groups equal to the rules' decision-by-decision reference over generated books (several
products and models, scores or none, referrals, payments late or never, reversals, write-offs),
for every grouping, exactly. A loan's bad days are found by the reference day by day, from
``lending.delinquency`` on the balances of each day."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.repositories import decision_stats as repo
from db.session import create_sessionmaker
from graph import decision_stats as field
from lending.clock import today
from lending.decision_stats import BAD_AFTER_DAYS, DecisionGrouping, JudgedDecision, fold
from lending.delinquency import delinquency
from lending.repayment import balances_as_of
from lending.services import loans as loan_service
from lending.services.applications import AssessmentIn
from lending.states import DecisionOutcome
from tests.api.test_portfolio import empty_but_products, products, service_at_random
from tests.dbfixtures import gql
from tests.factories import TESTER, create_application, decide, ledgers, pay

DAY = today()
G = DecisionGrouping

STATS = """
query S($from: Date!, $to: Date!, $asOf: Date!, $by: [DecisionGrouping!], $cuts: [Decimal!]) {
  decisionStats(from: $from, to: $to, asOf: $asOf, groupBy: $by, scoreBands: $cuts) {
    product model scoreBand { lower upper } outcome
    decisions byOutcome { outcome decisions } approvalRate meanScore medianScore
    disbursed everBad writtenOff badRate writtenOffRate
  }
}
"""


async def decided(
    engine: AsyncEngine,
    code: str,
    steps: list[tuple[str, str | None]],
    days_ago: int,
    amount: str = "1200.00",
    term: int = 12,
) -> Any:
    """An application decided by ``steps`` (outcome, score or None) a day apart from
    ``days_ago``; the last decision's result."""
    submitted = datetime.combine(DAY - timedelta(days=days_ago), time(9), tzinfo=UTC)
    application = await create_application(
        engine, product_code=code, amount=amount, term_months=term, submitted_at=submitted
    )
    result = None
    for n, (outcome, score) in enumerate(steps, start=1):
        assessment = AssessmentIn(score=Decimal(score), model="m@1") if score else None
        result = await decide(
            engine,
            application.id,
            outcome,
            decided_at=submitted + timedelta(days=n),
            assessment=assessment,
        )
    return result


async def disburse(engine: AsyncEngine, loan_id: int, on: date) -> Any:
    async with create_sessionmaker(engine)() as session, session.begin():
        return await loan_service.disburse_loan(
            session, TESTER, loan_id=loan_id, disbursed_on=on, first_due_date=None
        )


async def test_a_few_decisions_by_hand(client, engine):
    await products(engine, {("FLAT", "USD"): "0"})
    bad = await decided(engine, "FLAT", [("APPROVED", "700")], 200)
    await disburse(engine, bad.loan.id, DAY - timedelta(days=190))  # never paid: bad
    good = await decided(engine, "FLAT", [("APPROVED", "800")], 100)
    paid = await disburse(engine, good.loan.id, DAY - timedelta(days=95))
    for item in paid.installments:
        if item.due_date <= DAY:
            await pay(engine, good.loan.id, "100.00", item.due_date)
    await decided(engine, "FLAT", [("REJECTED", "400")], 60)
    await decided(engine, "FLAT", [("REFERRED", "550"), ("APPROVED", "650")], 30)
    window = {"from": (DAY - timedelta(days=365)).isoformat(), "to": DAY.isoformat()}

    body = await gql(client, STATS, window | {"asOf": DAY.isoformat()})
    assert "errors" not in body, body
    (everything,) = body["data"]["decisionStats"]
    assert everything["decisions"] == 5
    assert {c["outcome"]: c["decisions"] for c in everything["byOutcome"]} == {
        "APPROVED": 3,
        "REJECTED": 1,
        "REFERRED": 1,
    }
    assert everything["approvalRate"] == "0.6000"
    # scores 400, 550, 650, 700, 800
    assert (everything["meanScore"], everything["medianScore"]) == ("620.0000", "650.0000")
    assert (everything["disbursed"], everything["everBad"], everything["badRate"]) == (
        2,
        1,
        "0.5000",
    )
    assert everything["writtenOffRate"] == "0.0000"

    by_band = await gql(
        client, STATS, window | {"asOf": DAY.isoformat(), "by": ["SCORE_BAND"], "cuts": [600, 750]}
    )
    low, middle, high = by_band["data"]["decisionStats"]
    assert low["scoreBand"] == {"lower": None, "upper": "600"}
    assert (low["decisions"], low["approvalRate"], low["badRate"]) == (2, "0.0000", None)
    assert middle["scoreBand"] == {"lower": "600", "upper": "750"}
    assert (middle["decisions"], middle["disbursed"], middle["badRate"]) == (2, 1, "1.0000")
    assert high["scoreBand"] == {"lower": "750", "upper": None}
    assert (high["medianScore"], high["badRate"]) == ("800.0000", "0.0000")

    # 150 days ago the loan never paid had been due for 10 days only: not yet bad
    back = (DAY - timedelta(days=150)).isoformat()
    (then,) = (await gql(client, STATS, window | {"asOf": back}))["data"]["decisionStats"]
    assert (then["disbursed"], then["everBad"]) == (1, 0)


async def test_a_loan_is_bad_from_its_31st_day_past_due(client, engine):
    await products(engine, {("FLAT", "USD"): "0"})
    first_due = {}
    for score, paid_late_by in (("610", 31), ("620", 32), ("630", None)):
        made = await decided(engine, "FLAT", [("APPROVED", score)], 120)
        loan = await disburse(engine, made.loan.id, DAY - timedelta(days=110))
        due = min(i.due_date for i in loan.installments)
        first_due[score] = due
        if paid_late_by is not None:
            await pay(engine, made.loan.id, "100.00", due + timedelta(days=paid_late_by))
    due = first_due["630"]  # all three fell due the same day
    assert len(set(first_due.values())) == 1
    window = {"from": (DAY - timedelta(days=365)).isoformat(), "to": DAY.isoformat()}
    cuts = {"by": ["SCORE_BAND"], "cuts": ["615", "625"]}

    async def bad_on(day: date) -> list[int]:
        body = await gql(client, STATS, window | cuts | {"asOf": day.isoformat()})
        return [g["everBad"] for g in body["data"]["decisionStats"]]

    # paid on its 31st day late: never more than 30 days past due; on its 32nd: bad
    assert await bad_on(due + timedelta(days=30)) == [0, 0, 0]
    assert await bad_on(due + timedelta(days=31)) == [0, 1, 1]
    assert await bad_on(due + timedelta(days=45)) == [0, 1, 1]


async def test_the_calendars_first_and_last_days_are_answered(client, engine):
    # asyncpg sends 9999-12-31 as 'infinity', which no day follows: days are sent as text
    await products(engine, {("FLAT", "USD"): "0"})
    made = await decided(engine, "FLAT", [("APPROVED", "700")], 50)
    await disburse(engine, made.loan.id, DAY - timedelta(days=45))
    for first, last, day in (
        ("0001-01-01", "9999-12-31", "9999-12-31"),
        ("0001-01-01", "9999-12-31", "0001-01-01"),
    ):
        body = await gql(client, STATS, {"from": first, "to": last, "asOf": day})
        assert "errors" not in body, body
        (group,) = body["data"]["decisionStats"]
        assert group["everBad"] == (1 if day == "9999-12-31" else 0)


async def test_bad_arguments_are_refused(client):
    day = DAY.isoformat()
    cases = [
        ({"from": day, "to": "2020-01-01"}, "`from` must not be after `to`"),
        ({"by": ["SCORE_BAND"]}, "at least one cut point"),
        ({"by": ["SCORE_BAND"], "cuts": [700, 600]}, "strictly ascending"),
        ({"by": ["SCORE_BAND"], "cuts": ["x"]}, "decimal numbers"),
        ({"by": ["SCORE_BAND"], "cuts": list(range(21))}, "at most 20"),
        ({"by": ["SCORE_BAND"], "cuts": ["1E+200000"]}, "between 0 and 1000"),
        ({"by": ["SCORE_BAND"], "cuts": [1e300]}, "decimal numbers"),  # a float
        ({"cuts": [600]}, "only with SCORE_BAND"),
    ]
    for arguments, message in cases:
        variables = {"from": "2020-01-01", "to": day, "asOf": day} | arguments
        body = await gql(client, STATS, variables)
        assert body["data"] is None, body
        assert message in body["errors"][0]["message"], body
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def judged(engine: AsyncEngine, made_from: date, made_to: date, as_of: date) -> list[Any]:
    """Every decision of the window, its loan judged day by day by the rules."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT d.outcome::text AS outcome, d.score, d.model, p.code, l.id AS loan, "
                    "l.currency, l.disbursed_on, l.status::text AS status, "
                    "(l.closed_at AT TIME ZONE 'UTC')::date AS closed_on "
                    "FROM decisions d JOIN loan_applications a ON a.id = d.application_id "
                    "JOIN loan_products p ON p.id = a.product_id "
                    "LEFT JOIN loans l ON l.application_id = a.id AND d.outcome = 'APPROVED' "
                    "WHERE (d.decided_at AT TIME ZONE 'UTC')::date BETWEEN :f AND :t"
                ),
                {"f": made_from, "t": made_to},
            )
        ).all()
    books = await ledgers(engine)
    found = []
    for r in rows:
        disbursed = r.disbursed_on is not None and r.disbursed_on <= as_of
        bad = False
        if disbursed:
            day = r.disbursed_on
            while day <= as_of and not bad:
                balances = balances_as_of(books.due[r.loan], books.paid.get(r.loan, []), day)
                bad = delinquency(balances, day, r.currency).days_past_due > BAD_AFTER_DAYS
                day += timedelta(days=1)
        found.append(
            JudgedDecision(
                product=r.code,
                model=r.model,
                score=r.score,
                outcome=DecisionOutcome(r.outcome),
                disbursed=disbursed,
                ever_bad=bad,
                written_off=r.status == "WRITTEN_OFF" and r.closed_on <= as_of,
            )
        )
    return found


async def test_the_statement_answers_as_the_rules_over_generated_books(engine):
    rates = {("S-USD", "USD"): "12", ("S-KES", "KES"): "18", ("S-JPY", "JPY"): "9"}
    await products(engine, rates)
    codes = [code for code, _ in rates]
    groupings = [
        frozenset(c) for n in range(5) for c in itertools.combinations(list(DecisionGrouping), n)
    ]
    sessions = create_sessionmaker(engine)
    compared, books = 0, 3
    steps = {"decisions": 0, "disbursed": 0, "paid": 0, "reversed": 0, "written off": 0}
    for book in range(books):
        rng = random.Random(2929 + book)
        loans = []
        for _ in range(14):
            code = rng.choice(codes)
            model = rng.choice(["credit-score@3.2", "credit-score@4.0", None])
            trail = rng.choice([["APPROVED"], ["REJECTED"], ["REFERRED", "APPROVED"], ["REFERRED"]])
            scores = [
                str(Decimal(rng.randint(3000000, 9000000)) / 10000) if model else None
                for _ in trail
            ]
            amount = "120000" if code == "S-JPY" else "1200.00"
            days_ago = rng.randint(40, 300)
            submitted = datetime.combine(DAY - timedelta(days=days_ago), time(9), tzinfo=UTC)
            application = await create_application(
                engine, product_code=code, amount=amount, term_months=6, submitted_at=submitted
            )
            result = None
            for n, (outcome, score) in enumerate(zip(trail, scores, strict=True), start=1):
                assessment = AssessmentIn(score=Decimal(score), model=model) if score else None
                result = await decide(
                    engine,
                    application.id,
                    outcome,
                    decided_at=submitted + timedelta(days=n),
                    assessment=assessment,
                )
                steps["decisions"] += 1
            if result is not None and result.loan is not None and rng.random() < 0.85:
                on = DAY - timedelta(days=days_ago - len(trail) - 1)
                loans.append((await disburse(engine, result.loan.id, on)).loan)
                steps["disbursed"] += 1
        await service_at_random(engine, None, loans, rng, steps, 40)
        windows = [(DAY - timedelta(days=400), DAY), (DAY - timedelta(days=150), DAY)]
        days = [DAY, DAY - timedelta(days=60), DAY - timedelta(days=200)]
        cuts = [Decimal("450"), Decimal("600"), Decimal("725.5")]
        for (made_from, made_to), as_of in itertools.product(windows, days):
            reference = await judged(engine, made_from, made_to, as_of)
            for by in groupings:
                async with sessions() as session:
                    found = await repo.decision_stats(session, made_from, made_to, as_of, by, cuts)
                assert found == fold(reference, by, cuts), (book, by, as_of)
                compared += 1
        await empty_but_products(engine)
    print(books, compared, steps)
    assert steps["paid"] >= 40, steps
    assert steps["reversed"] >= 3, steps
    assert steps["written off"] >= 1, steps


async def test_too_many_groups_are_refused_not_cut_short(client, engine, monkeypatch):
    await products(engine, {("FLAT", "USD"): "0"})
    for n in range(6):  # six models: six groups by MODEL
        application = await create_application(engine, product_code="FLAT", amount="1200.00")
        assessment = AssessmentIn(score=Decimal(600 + n), model=f"model-{n}@1")
        await decide(engine, application.id, "REJECTED", assessment=assessment)
    for module in (repo, field):
        monkeypatch.setattr(module, "MAX_GROUPS", 5)
    repo._statement.cache_clear()
    try:
        window = {"from": (DAY - timedelta(days=3)).isoformat(), "to": DAY.isoformat()}
        body = await gql(client, STATS, window | {"asOf": DAY.isoformat(), "by": ["MODEL"]})
        assert body["data"] is None, body
        assert "More than 5 groups" in body["errors"][0]["message"]
        body = await gql(client, STATS, window | {"asOf": DAY.isoformat(), "by": ["OUTCOME"]})
        assert body["data"]["decisionStats"][0]["decisions"] == 6
    finally:
        repo._statement.cache_clear()
