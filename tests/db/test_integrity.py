"""Integrity rules that PostgreSQL itself enforces, whatever the application does."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.factories import create_application, create_product, decide


async def execute(engine, sql: str, **params):
    async with engine.begin() as connection:
        return await connection.execute(text(sql), params)


async def test_one_open_application_per_applicant(engine):
    await create_product(engine)
    application = await create_application(engine, email="one@example.com")
    with pytest.raises(IntegrityError, match="uq_loan_applications_one_open_per_applicant"):
        await execute(
            engine,
            "INSERT INTO loan_applications (reference, applicant_id, product_id, "
            "amount_requested, term_months, status) VALUES ('APP-X', :a, :p, 100, 12, 'IN_REVIEW')",
            a=application.applicant_id,
            p=application.product_id,
        )


async def test_email_is_unique_regardless_of_case(engine):
    await execute(engine, "INSERT INTO applicants (full_name, email) VALUES ('A', 'a@x.io')")
    with pytest.raises(IntegrityError, match="uq_applicants_email_lower"):
        await execute(engine, "INSERT INTO applicants (full_name, email) VALUES ('B', 'A@X.IO')")


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("amount_requested", "-1", "ck_loan_applications_amount_positive"),
        ("term_months", "0", "ck_loan_applications_term_positive"),
        ("status", "'LOST'", "ck_loan_applications_application_status"),
    ],
)
async def test_application_checks(engine, column, value, constraint):
    await create_product(engine)
    application = await create_application(engine)
    with pytest.raises(IntegrityError, match=constraint):
        await execute(
            engine,
            f"UPDATE loan_applications SET {column} = {value} WHERE id = :i",
            i=application.id,
        )


async def test_decision_terms_only_when_approved(engine):
    await create_product(engine)
    application = await create_application(engine)
    with pytest.raises(IntegrityError, match="ck_decisions_terms_only_when_approved"):
        await execute(
            engine,
            "INSERT INTO decisions (application_id, outcome, reason, decided_by, approved_amount) "
            "VALUES (:i, 'REJECTED', 'no', 'me', 100)",
            i=application.id,
        )


@pytest.mark.parametrize(
    "statement", ["UPDATE decisions SET reason = 'edited'", "DELETE FROM decisions"]
)
async def test_decisions_are_append_only(engine, statement):
    await create_product(engine)
    application = await create_application(engine)
    await decide(engine, application.id, "REFERRED")
    with pytest.raises(DBAPIError, match="append-only"):
        await execute(engine, statement)
    rows = (await execute(engine, "SELECT reason FROM decisions")).scalars().all()
    assert rows == ["Referred in a test."]


async def test_product_bounds_are_checked(engine):
    with pytest.raises(IntegrityError, match="ck_loan_products_amount_bounds"):
        await create_product(engine, min_amount="500", max_amount="100")
