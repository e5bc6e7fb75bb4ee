"""Instalments keep the day they were settled, so an overdue list reads only the unsettled.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The first day on which the allocations received by then covered the instalment (its due date
# when it asked for nothing), as lending.allocation.settled_on defines it.
SETTLED_ON = """
SELECT i.id,
       CASE WHEN i.principal_due + i.interest_due = 0 THEN i.due_date
            ELSE min(r.received_on) FILTER (WHERE r.paid >= i.principal_due + i.interest_due)
       END AS settled_on
FROM installments i
LEFT JOIN (
    SELECT a.installment_id, a.received_on,
           sum(a.principal + a.interest + a.interest_waived) OVER (
               PARTITION BY a.installment_id ORDER BY a.received_on) AS paid
    FROM payment_allocations a
) r ON r.installment_id = i.id
GROUP BY i.id
"""
BACKFILL = f"""
UPDATE installments i SET settled_on = s.settled_on FROM ({SETTLED_ON}) s
WHERE i.id = s.id AND s.settled_on IS NOT NULL
"""


def upgrade() -> None:
    op.add_column("installments", sa.Column("settled_on", sa.Date(), nullable=True))
    op.execute(BACKFILL)
    op.create_index(
        "ix_installments_unsettled_due_date_id",
        "installments",
        ["due_date", "id"],
        postgresql_where=sa.text("settled_on IS NULL"),
    )
    op.create_index(
        "ix_installments_settled_on_due_date",
        "installments",
        ["settled_on", "due_date"],
        postgresql_where=sa.text("settled_on IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_installments_settled_on_due_date", table_name="installments")
    op.drop_index("ix_installments_unsettled_due_date_id", table_name="installments")
    op.drop_column("installments", "settled_on")
