"""The agent's loop: assessments on decisions, reminders, cancellation, write-off, settlement.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCORE = sa.Numeric(8, 4)
MONEY = sa.Numeric(18, 2)


def upgrade() -> None:
    # Products: the assessment policy.
    op.add_column("loan_products", sa.Column("refer_below_score", SCORE, nullable=True))
    op.add_column(
        "loan_products",
        sa.Column("assessment_required", sa.Boolean(), server_default=sa.text("false")),
    )
    op.alter_column("loan_products", "assessment_required", nullable=False)

    # Decisions: the assessment behind them (still append-only).
    op.add_column("decisions", sa.Column("score", SCORE, nullable=True))
    op.add_column("decisions", sa.Column("model", sa.String(length=100), nullable=True))
    op.add_column("decisions", sa.Column("evidence", postgresql.JSONB(), nullable=True))
    op.create_check_constraint(
        "assessment_complete", "decisions", "(score IS NULL) = (model IS NULL)"
    )
    op.create_check_constraint(
        "score_range", "decisions", "score IS NULL OR score BETWEEN 0 AND 1000"
    )
    op.create_table(
        "assessment_factors",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("decision_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("contribution", sa.Numeric(12, 4), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.CheckConstraint(
            "length(name) BETWEEN 1 AND 100", name=op.f("ck_assessment_factors_name_length")
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_assessment_factors_decision_id_decisions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_factors")),
        sa.UniqueConstraint("decision_id", "position", name="uq_assessment_factors_decision_id"),
    )
    op.execute(
        "CREATE TRIGGER assessment_factors_append_only BEFORE UPDATE OR DELETE ON "
        "assessment_factors FOR EACH ROW EXECUTE FUNCTION refuse_change()"
    )

    # Loans: why and when they were closed, what was written off, what a settlement waived.
    op.add_column("loans", sa.Column("closed_reason", sa.Text(), nullable=True))
    op.add_column("loans", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("loans", sa.Column("written_off_amount", MONEY, nullable=True))
    op.add_column("loans", sa.Column("settlement_rebate", MONEY, nullable=True))

    # Payments: an early settlement is a payment of its own kind, never edited afterwards.
    op.add_column(
        "payments", sa.Column("settlement", sa.Boolean(), server_default=sa.text("false"))
    )
    op.alter_column("payments", "settlement", nullable=False)
    op.execute(
        """
        CREATE OR REPLACE FUNCTION payments_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'payments are never deleted: reverse the payment instead'
                    USING ERRCODE = 'restrict_violation';
            END IF;
            IF NEW.loan_id <> OLD.loan_id OR NEW.amount <> OLD.amount
               OR NEW.received_on <> OLD.received_on OR NEW.recorded_at <> OLD.recorded_at
               OR NEW.recorded_by <> OLD.recorded_by
               OR NEW.reference IS DISTINCT FROM OLD.reference
               OR NEW.settlement <> OLD.settlement
               OR OLD.reversed_at IS NOT NULL THEN
                RAISE EXCEPTION 'payments are never edited: only an unreversed payment may be reversed'
                    USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NEW;
        END $$
        """
    )

    # Allocations: interest an early settlement waived.
    op.add_column(
        "payment_allocations",
        sa.Column("interest_waived", MONEY, server_default=sa.text("0"), nullable=False),
    )
    op.drop_constraint("amounts_positive", "payment_allocations", type_="check")
    op.create_check_constraint(
        "amounts_positive",
        "payment_allocations",
        "principal >= 0 AND interest >= 0 AND interest_waived >= 0 "
        "AND principal + interest + interest_waived > 0",
    )

    # Reminders: an outbox, QUEUED until the delivering service reports back.
    op.create_table(
        "reminders",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("loan_id", sa.BigInteger(), nullable=False),
        sa.Column("installment_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "SMS",
                "EMAIL",
                "PHONE",
                "LETTER",
                name="reminder_channel",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "QUEUED",
                "DELIVERED",
                "FAILED",
                name="reminder_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'QUEUED'"),
            nullable=False,
        ),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column(
            "requested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("requested_on", sa.Date(), nullable=False),
        sa.Column("reported_by", sa.String(length=200), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.String(length=1000), nullable=True),
        sa.CheckConstraint(
            "length(message) BETWEEN 1 AND 1000", name=op.f("ck_reminders_message_length")
        ),
        sa.CheckConstraint(
            "(status = 'QUEUED') = (reported_at IS NULL)",
            name=op.f("ck_reminders_reported_once_delivered"),
        ),
        sa.ForeignKeyConstraint(
            ["installment_id"],
            ["installments.id"],
            name=op.f("fk_reminders_installment_id_installments"),
        ),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], name=op.f("fk_reminders_loan_id_loans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminders")),
    )
    op.create_index(
        "uq_reminders_installment_id_channel_requested_on",
        "reminders",
        ["installment_id", "channel", "requested_on"],
        unique=True,
    )
    op.create_index(
        "ix_reminders_loan_id_requested_at_id", "reminders", ["loan_id", "requested_at", "id"]
    )
    # A reminder is never deleted; only its delivery may be reported, once.
    op.execute(
        """
        CREATE FUNCTION reminders_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'reminders are never deleted' USING ERRCODE = 'restrict_violation';
            END IF;
            IF OLD.status <> 'QUEUED' OR NEW.loan_id <> OLD.loan_id
               OR NEW.installment_id <> OLD.installment_id OR NEW.channel <> OLD.channel
               OR NEW.message <> OLD.message OR NEW.requested_by <> OLD.requested_by
               OR NEW.requested_at <> OLD.requested_at OR NEW.requested_on <> OLD.requested_on THEN
                RAISE EXCEPTION 'a reminder is only reported on, once'
                    USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER reminders_guard BEFORE UPDATE OR DELETE ON reminders "
        "FOR EACH ROW EXECUTE FUNCTION reminders_guard()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER reminders_guard ON reminders")
    op.execute("DROP FUNCTION reminders_guard()")
    op.drop_index("ix_reminders_loan_id_requested_at_id", table_name="reminders")
    op.drop_index("uq_reminders_installment_id_channel_requested_on", table_name="reminders")
    op.drop_table("reminders")
    op.drop_constraint("amounts_positive", "payment_allocations", type_="check")
    op.create_check_constraint(
        "amounts_positive",
        "payment_allocations",
        "principal >= 0 AND interest >= 0 AND principal + interest > 0",
    )
    op.drop_column("payment_allocations", "interest_waived")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION payments_guard() RETURNS trigger LANGUAGE plpgsql AS $$
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
    op.drop_column("payments", "settlement")
    for column in ("settlement_rebate", "written_off_amount", "closed_at", "closed_reason"):
        op.drop_column("loans", column)
    op.execute("DROP TRIGGER assessment_factors_append_only ON assessment_factors")
    op.drop_table("assessment_factors")
    op.drop_constraint("score_range", "decisions", type_="check")
    op.drop_constraint("assessment_complete", "decisions", type_="check")
    for column in ("evidence", "model", "score"):
        op.drop_column("decisions", column)
    op.drop_column("loan_products", "assessment_required")
    op.drop_column("loan_products", "refer_below_score")
