"""API keys may carry their own budget of cost points (capacity and restore rate).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("budget_capacity", sa.BigInteger(), nullable=True))
    op.add_column("api_keys", sa.Column("budget_restore", sa.BigInteger(), nullable=True))
    op.create_check_constraint(
        "budget_complete",
        "api_keys",
        "(budget_capacity IS NULL) = (budget_restore IS NULL)"
        " AND (budget_capacity IS NULL OR (budget_capacity > 0 AND budget_restore > 0))",
    )


def downgrade() -> None:
    op.drop_constraint("budget_complete", "api_keys", type_="check")
    op.drop_column("api_keys", "budget_restore")
    op.drop_column("api_keys", "budget_capacity")
