"""An instalment's ``settled_on`` is kept with its allocations, which an overdue list reads.

Whatever sequence of payments (back-dated, partial, beyond one instalment), reversals and early
settlements made a loan's allocations, the column equals what a scan of the allocations gives
(the migration's backfill), and the instalments unpaid on any day are the same by both.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.session import create_sessionmaker
from graph.ids import to_global_id
from lending.clock import today
from lending.errors import DomainError
from lending.services import payments as payment_service
from tests.dbfixtures import gql
from tests.factories import TESTER, create_loan, create_product, migration, pay

DAY = today()
MIGRATION = "2026_12_03-0009_installments_settled_on.py"
QUOTE = "query Q($id: ID!) { loan(id: $id) { settlementQuote { amount } } }"
SETTLE = """mutation S($input: SettleLoanInput!) {
  settleLoan(input: $input) { userErrors { code message } } }"""


async def disagreements(engine: AsyncEngine, days: list[date]) -> list[Any]:
    """Instalments whose kept ``settled_on`` differs from the scan's, and (day, instalment)
    pairs that one says is unpaid on the day and the other does not."""
    scan = migration(MIGRATION).SETTLED_ON
    paid_by = """SELECT coalesce(sum(a.principal + a.interest + a.interest_waived), 0)
        FROM payment_allocations a WHERE a.installment_id = i.id AND a.received_on <= d.day"""
    async with engine.connect() as connection:
        differ = (
            await connection.execute(
                text(
                    f"SELECT i.id, i.settled_on AS kept, s.settled_on AS scanned "
                    f"FROM installments i JOIN ({scan}) s ON s.id = i.id "
                    f"WHERE i.settled_on IS DISTINCT FROM s.settled_on"
                )
            )
        ).all()
        unpaid = (
            await connection.execute(
                text(
                    f"SELECT d.day, i.id FROM installments i, unnest(CAST(:days AS date[])) d(day) "
                    f"WHERE i.due_date < d.day AND (i.principal_due + i.interest_due > "
                    f"({paid_by})) <> (i.settled_on IS NULL OR i.settled_on > d.day)"
                ),
                {"days": days},
            )
        ).all()
    return [*differ, *unpaid]


async def reverse_one(sessions: Any, loan_id: int, rng: random.Random) -> None:
    """Reverse one of the loan's live payments, drawn at random."""
    async with sessions() as session, session.begin():
        live = await session.scalars(
            text("SELECT id FROM payments WHERE loan_id = :l AND reversed_at IS NULL ORDER BY id"),
            {"l": loan_id},
        )
        choices = list(live)
        if not choices:
            raise LookupError("no live payment")
        await payment_service.reverse_payment(
            session, TESTER, payment_id=rng.choice(choices), reason="Bounced."
        )


async def test_settled_on_is_the_scan_of_the_allocations_after_every_change(engine, client):
    await create_product(engine, code="SETTLED-ON")
    rng = random.Random(29)
    loans = [
        await create_loan(
            engine,
            product_code="SETTLED-ON",
            amount=Decimal(rng.randint(12, 60) * 100),
            term_months=12,
            disbursed_on=DAY - timedelta(days=rng.randint(150, 400)),
        )
        for _ in range(6)
    ]
    days = sorted({DAY - timedelta(days=n) for n in range(0, 420, 9)})
    sessions = create_sessionmaker(engine)
    steps = {"paid": 0, "refused": 0, "reversed": 0, "settled": 0}
    for step in range(60):
        loan = loans[step % len(loans)]
        action = rng.random()
        if action < 0.2:
            try:
                await reverse_one(sessions, loan.id, rng)
                steps["reversed"] += 1
            except (DomainError, LookupError):  # nothing to reverse, or the settlement first
                steps["refused"] += 1
        elif action < 0.27:
            loan_id = to_global_id("Loan", loan.id)
            quote = (await gql(client, QUOTE, {"id": loan_id}))["data"]["loan"]["settlementQuote"]
            if quote is not None:
                settled = await gql(
                    client, SETTLE, {"input": {"loanId": loan_id, "amount": quote["amount"]}}
                )
                assert settled["data"]["settleLoan"]["userErrors"] == [], settled
                steps["settled"] += 1
        else:
            amount = Decimal(rng.randint(500, 90_000)) / 100
            received = loan.disbursed_on + timedelta(days=rng.randint(1, 420))
            try:
                await pay(engine, loan.id, str(amount), min(received, DAY))
                steps["paid"] += 1
            except DomainError:  # more than is owed, or the loan is paid off
                steps["refused"] += 1
        assert await disagreements(engine, days) == [], (step, steps)
    print(steps)
    assert steps["paid"] >= 20, steps
    assert steps["reversed"] >= 5, steps
    assert steps["settled"] >= 1, steps


async def test_the_backfill_gives_what_the_writes_kept(engine):
    await create_product(engine, code="BACKFILL")
    loan = await create_loan(
        engine,
        product_code="BACKFILL",
        amount=Decimal("2400.00"),
        term_months=12,
        disbursed_on=DAY - timedelta(days=200),
    )
    for n in range(4):
        await pay(engine, loan.id, "200.00", DAY - timedelta(days=150 - 30 * n))
    async with engine.connect() as connection:
        kept = (
            await connection.execute(
                text("SELECT id, settled_on FROM installments WHERE loan_id = :l ORDER BY id"),
                {"l": loan.id},
            )
        ).all()
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE installments SET settled_on = NULL"))
        await connection.execute(text(migration(MIGRATION).BACKFILL))
        again = (
            await connection.execute(
                text("SELECT id, settled_on FROM installments WHERE loan_id = :l ORDER BY id"),
                {"l": loan.id},
            )
        ).all()
    assert again == kept
    assert sum(1 for _, day in kept if day is not None) == 3, (
        kept
    )  # 800.00 pays three (213.80 each)
    assert await disagreements(engine, [DAY]) == []
