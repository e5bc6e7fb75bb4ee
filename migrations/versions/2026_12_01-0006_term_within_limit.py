"""Hold terms to the longest one lent (600 months), which bounds a schedule's length.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_check_constraint("term_within_limit", "loan_products", "max_term_months <= 600")
    op.create_check_constraint("term_within_limit", "loans", "term_months <= 600")


def downgrade() -> None:
    op.drop_constraint("term_within_limit", "loans", type_="check")
    op.drop_constraint("term_within_limit", "loan_products", type_="check")
