"""Repayment schedules, payments (never deleted or edited) and their derived allocations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 06:59:42.901989
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "installments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("loan_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("principal_due", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("interest_due", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("balance_after", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.CheckConstraint("balance_after >= 0", name=op.f("ck_installments_balance_not_negative")),
        sa.CheckConstraint("number >= 1", name=op.f("ck_installments_number_positive")),
        sa.CheckConstraint(
            "principal_due >= 0 AND interest_due >= 0",
            name=op.f("ck_installments_amounts_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_installments_loan_id_loans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installments")),
        sa.UniqueConstraint("loan_id", "number", name="uq_installments_loan_id_number"),
    )
    op.create_index("ix_installments_due_date_id", "installments", ["due_date", "id"], unique=False)
    op.create_table(
        "payments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("loan_id", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reversed_by", sa.String(length=200), nullable=True),
        sa.Column("reversed_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(reversed_at IS NULL) = (reversed_by IS NULL)",
            name=op.f("ck_payments_reversal_complete"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_payments_loan_id_loans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
    )
    op.create_index(
        "ix_payments_loan_id_received_on_recorded_at",
        "payments",
        ["loan_id", "received_on", "recorded_at"],
        unique=False,
    )
    op.create_index(
        "uq_payments_loan_id_reference",
        "payments",
        ["loan_id", "reference"],
        unique=True,
        postgresql_where=sa.text("reference IS NOT NULL"),
    )
    op.create_table(
        "payment_allocations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("loan_id", sa.BigInteger(), nullable=False),
        sa.Column("payment_id", sa.BigInteger(), nullable=False),
        sa.Column("installment_id", sa.BigInteger(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("principal", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("interest", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.CheckConstraint(
            "principal >= 0 AND interest >= 0 AND principal + interest > 0",
            name=op.f("ck_payment_allocations_amounts_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["installment_id"],
            ["installments.id"],
            name=op.f("fk_payment_allocations_installment_id_installments"),
        ),
        sa.ForeignKeyConstraint(
            ["loan_id"], ["loans.id"], name=op.f("fk_payment_allocations_loan_id_loans")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_payment_allocations_payment_id_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_allocations")),
    )
    op.create_index(
        "ix_payment_allocations_installment_id",
        "payment_allocations",
        ["installment_id", "received_on"],
        unique=False,
    )
    op.create_index(
        "ix_payment_allocations_loan_id", "payment_allocations", ["loan_id"], unique=False
    )
    op.create_index(
        "ix_payment_allocations_payment_id", "payment_allocations", ["payment_id"], unique=False
    )

    # Payments are never deleted, and only the reversal columns may change (once).
    op.execute(
        """
        CREATE FUNCTION payments_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'payments are never deleted: reverse the payment instead'
                    USING ERRCODE = 'restrict_violation';
            END IF;
            IF NEW.loan_id <> OLD.loan_id OR NEW.amount <> OLD.amount
               OR NEW.received_on <> OLD.received_on OR NEW.recorded_at <> OLD.recorded_at
               OR NEW.recorded_by <> OLD.recorded_by
               OR NEW.reference IS DISTINCT FROM OLD.reference
               OR OLD.reversed_at IS NOT NULL THEN
                RAISE EXCEPTION 'payments are never edited: only an unreversed payment may be reversed'
                    USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER payments_guard BEFORE UPDATE OR DELETE ON payments "
        "FOR EACH ROW EXECUTE FUNCTION payments_guard()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER payments_guard ON payments")
    op.execute("DROP FUNCTION payments_guard()")
    op.drop_index("ix_payment_allocations_payment_id", table_name="payment_allocations")
    op.drop_index("ix_payment_allocations_loan_id", table_name="payment_allocations")
    op.drop_index("ix_payment_allocations_installment_id", table_name="payment_allocations")
    op.drop_table("payment_allocations")
    op.drop_index(
        "uq_payments_loan_id_reference",
        table_name="payments",
        postgresql_where=sa.text("reference IS NOT NULL"),
    )
    op.drop_index("ix_payments_loan_id_received_on_recorded_at", table_name="payments")
    op.drop_table("payments")
    op.drop_index("ix_installments_due_date_id", table_name="installments")
    op.drop_table("installments")
