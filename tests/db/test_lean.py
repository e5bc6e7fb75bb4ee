"""The write path's fixed statements, sent by asyncpg on the session's connection, are part of
the session's transaction: kept by its commit, undone by its rollback, seen by the engine's
statement listeners. Rows read that way (``one``, ``one_and``, ``rows``) load as the ORM loads
them: for every statement sent so and every model it loads, the same columns with the same
values of the same types (enums as enums, amounts as Decimal, times with their zone), and no
row when the ORM finds none."""

from __future__ import annotations

import asyncio
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, inspect, select, text

from db.lean import lean, one, one_and, pair, rows
from db.models import Applicant, Loan, LoanApplication, LoanProduct
from db.repositories import applicants, applications, products, servicing
from db.session import create_sessionmaker
from tests.factories import create_loan, create_product, pay

INSERT = (
    "INSERT INTO idempotency_keys (actor, key, operation, request_hash) VALUES ($1, $2, 'x', 'h')"
)
COUNT = "SELECT count(*) FROM idempotency_keys WHERE actor = $1"


async def kept(engine, actor: str) -> int:
    async with engine.connect() as connection:
        found = await connection.execute(
            text("SELECT count(*) FROM idempotency_keys WHERE actor = :a"), {"a": actor}
        )
        return int(found.scalar_one())


@pytest.mark.parametrize("first", ["lean", "sqlalchemy"])
async def test_a_lean_statement_is_undone_by_the_sessions_rollback(engine, first):
    # given a session whose transaction is begun by a lean statement or by SQLAlchemy's own
    actor = f"lean-rollback-{first}"
    async with create_sessionmaker(engine)() as session:
        transaction = await session.begin()
        if first == "sqlalchemy":
            await session.execute(text("SELECT 1"))
        connection = await lean(session)
        await connection.fetchval(INSERT, actor, "k1")
        await session.execute(
            text(
                "INSERT INTO idempotency_keys (actor, key, operation, request_hash) "
                "VALUES (:a, 'k2', 'x', 'h')"
            ),
            {"a": actor},
        )
        # both statements see each other: one transaction
        assert await connection.fetchval(COUNT, actor) == 2
        # when it is rolled back
        await transaction.rollback()
    # then neither row is kept
    assert await kept(engine, actor) == 0


async def test_a_lean_statement_is_kept_by_the_sessions_commit(engine):
    actor = "lean-commit"
    async with create_sessionmaker(engine)() as session, session.begin():
        await (await lean(session)).fetchval(INSERT, actor, "k1")
    assert await kept(engine, actor) == 1


async def test_a_session_hands_out_one_lean_connection_per_transaction(engine):
    # given a session that runs two transactions, one after the other
    actor = "lean-per-transaction"
    txid = "SELECT txid_current()"
    async with create_sessionmaker(engine)() as session:
        async with session.begin():
            first = await lean(session)
            # then within a transaction it is the same connection every time
            assert await lean(session) is first
            first_transaction = await first.fetchval(txid)
            await first.fetchval(INSERT, actor, "k1")
        # and the next transaction gets its own, in that transaction
        transaction = await session.begin()
        second = await lean(session)
        assert second is not first
        assert await second.fetchval(txid) != first_transaction
        await second.fetchval(INSERT, actor, "k2")
        await transaction.rollback()
    assert await kept(engine, actor) == 1  # the first committed, the second rolled back


async def test_the_engines_statement_listeners_see_lean_statements(engine):
    seen: list[str] = []

    def before(_conn, _cursor, statement, *_):
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await (await lean(session)).fetchval(COUNT, "nobody")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)
    assert COUNT in seen


async def test_a_cancelled_lean_statement_does_not_return_its_connection_to_the_pool(engine):
    # given a lean statement cancelled while PostgreSQL runs it
    async with create_sessionmaker(engine)() as session:
        await session.begin()
        connection = await lean(session)
        driver = connection._driver
        task = asyncio.create_task(connection.fetchval("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # then its connection was closed rather than handed to the next caller mid-exchange
    assert driver.is_closed()
    async with create_sessionmaker(engine)() as session, session.begin():
        assert await (await lean(session)).fetchval("SELECT 41 + 1") == 42


def columns(row: Any) -> dict[str, tuple[Any, type]]:
    """Each column of a model instance: its value and the value's type."""
    values = {a.key: getattr(row, a.key) for a in inspect(type(row)).column_attrs}
    return {key: (value, type(value)) for key, value in values.items()}


async def test_each_statement_loads_its_model_as_the_orm_does(engine):
    await create_product(engine)
    loan = await create_loan(engine, disbursed_on=date(2026, 1, 5), amount=Decimal("5000.00"))
    await pay(engine, loan.id, "450.00", date(2026, 2, 10), reference="ref-1")
    async with create_sessionmaker(engine)() as session, session.begin():
        applicant = await session.get(Applicant, loan.applicant_id)
        assert applicant is not None
        cases: list[tuple[Any, dict[str, Any], type]] = [
            (servicing._LOCK_LOAN, {"p_id": loan.id}, Loan),
            (applications._LOCK, {"p_id": loan.application_id}, LoanApplication),
            (products._BY_CODE, {"p_code": "PERSONAL-USD"}, LoanProduct),
            (applicants._BY_EMAIL, {"a_lower": applicant.email.lower()}, Applicant),
        ]
        for statement, values, model in cases:
            lean = await one(session, statement, values, model)
            orm = await session.scalar(statement, values)
            assert lean is not None
            assert orm is not None
            assert columns(lean) == columns(orm), model
            assert type(lean) is model
            assert inspect(lean).session is None  # made, not loaded: in no session
            assert not inspect(lean).modified  # nothing pending: as loaded, not as built
        # two models in one row: their columns labelled apart
        both = await pair(
            session,
            applications._LOCK_WITH_PRODUCT,
            {"p_id": loan.application_id},
            LoanApplication,
            LoanProduct,
        )
        orm_both = (
            await session.execute(
                select(LoanApplication, LoanProduct)
                .join(LoanProduct, LoanProduct.id == LoanApplication.product_id)
                .where(LoanApplication.id == loan.application_id)
            )
        ).one()
        assert both is not None
        assert [columns(row) for row in both] == [columns(row) for row in orm_both]
        assert await one(session, servicing._LOCK_LOAN, {"p_id": -1}, Loan) is None
        assert await one_and(session, servicing._LOCK_LOAN, {"p_id": -1}, Loan, 1) is None

        # a statement's rows as asyncpg gives them, where no conversion is needed
        found = await rows(session, servicing._ALLOCATION_INPUTS, {"p_loan": loan.id})
        orm_rows = (await session.execute(servicing._ALLOCATION_INPUTS, {"p_loan": loan.id})).all()
        assert sorted(tuple(r.values()) for r in found) == sorted(tuple(r) for r in orm_rows)
