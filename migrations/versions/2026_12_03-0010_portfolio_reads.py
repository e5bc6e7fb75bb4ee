"""What the portfolio and decision statistics read without scanning the book: loans keep the
principal and interest their allocations hold; the unsettled instalments' index holds what a
portfolio sums of them; instalments settled more than 30 days late have an index of their own.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What each loan's allocations hold: the payments not reversed.
PAID = """
SELECT l.id, coalesce(sum(a.principal), 0) AS principal, coalesce(sum(a.interest), 0) AS interest
FROM loans l LEFT JOIN payment_allocations a ON a.loan_id = l.id
GROUP BY l.id
"""
# Settled 31 days or more after falling due: more than 30 days past due the day before
# (lending.decision_stats.BAD_AFTER_DAYS; db.models names the same condition).
SETTLED_LATE = "settled_on > due_date + 31"
BACKFILL = f"""
UPDATE loans l SET principal_paid = s.principal, interest_paid = s.interest FROM ({PAID}) s
WHERE l.id = s.id AND (s.principal <> 0 OR s.interest <> 0)
"""


def upgrade() -> None:
    money = sa.Numeric(18, 2)
    for column in ("principal_paid", "interest_paid"):
        op.add_column(
            "loans", sa.Column(column, money, server_default=sa.text("0"), nullable=False)
        )
    op.execute(BACKFILL)
    _unsettled(include=["loan_id", "principal_due", "interest_due"])
    op.create_index(
        "ix_installments_settled_late_due_date",
        "installments",
        ["due_date"],
        postgresql_include=["loan_id"],
        postgresql_where=sa.text(SETTLED_LATE),
    )
    op.create_index(
        "ix_payment_allocations_received_on",
        "payment_allocations",
        ["received_on"],
        postgresql_include=["loan_id", "principal", "interest"],
    )


def _unsettled(include: list[str]) -> None:
    op.drop_index("ix_installments_unsettled_due_date_id", table_name="installments")
    op.create_index(
        "ix_installments_unsettled_due_date_id",
        "installments",
        ["due_date", "id"],
        postgresql_where=sa.text("settled_on IS NULL"),
        postgresql_include=include,
    )


def downgrade() -> None:
    op.drop_index("ix_installments_settled_late_due_date", table_name="installments")
    _unsettled(include=[])
    op.drop_index("ix_payment_allocations_received_on", table_name="payment_allocations")
    op.drop_column("loans", "interest_paid")
    op.drop_column("loans", "principal_paid")
