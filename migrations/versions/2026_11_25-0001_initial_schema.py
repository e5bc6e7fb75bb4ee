"""Initial schema: loan products, applicants, applications, decisions (append-only), loans.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 06:44:02.476759
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "applicants",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "length(email) BETWEEN 3 AND 254", name=op.f("ck_applicants_email_length")
        ),
        sa.CheckConstraint(
            "length(full_name) BETWEEN 1 AND 200", name=op.f("ck_applicants_full_name_length")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applicants")),
    )
    op.create_index("ix_applicants_created_at_id", "applicants", ["created_at", "id"], unique=False)
    op.create_index(
        "uq_applicants_email_lower", "applicants", [sa.literal_column("lower(email)")], unique=True
    )
    op.create_table(
        "loan_products",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("min_amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("max_amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("min_term_months", sa.Integer(), nullable=False),
        sa.Column("max_term_months", sa.Integer(), nullable=False),
        sa.Column("annual_interest_rate", sa.Numeric(precision=9, scale=6), nullable=False),
        sa.Column(
            "amortization",
            sa.Enum(
                "ANNUITY",
                "EQUAL_PRINCIPAL",
                name="amortization",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "frequency",
            sa.Enum(
                "MONTHLY",
                "BIWEEKLY",
                "WEEKLY",
                name="frequency",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "day_count",
            sa.Enum(
                "THIRTY_360",
                "ACTUAL_365",
                name="day_count",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "code ~ '^[A-Z0-9_-]{2,32}$'", name=op.f("ck_loan_products_code_format")
        ),
        sa.CheckConstraint(
            "currency ~ '^[A-Z]{3}$'", name=op.f("ck_loan_products_currency_format")
        ),
        sa.CheckConstraint(
            "annual_interest_rate >= 0 AND annual_interest_rate <= 100",
            name=op.f("ck_loan_products_rate_range"),
        ),
        sa.CheckConstraint(
            "min_amount > 0 AND max_amount >= min_amount",
            name=op.f("ck_loan_products_amount_bounds"),
        ),
        sa.CheckConstraint(
            "min_term_months >= 1 AND max_term_months >= min_term_months",
            name=op.f("ck_loan_products_term_bounds"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_products")),
        sa.UniqueConstraint("code", name=op.f("uq_loan_products_code")),
    )
    op.create_table(
        "loan_applications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("applicant_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_requested", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("declared_monthly_income", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "SUBMITTED",
                "IN_REVIEW",
                "APPROVED",
                "REJECTED",
                "WITHDRAWN",
                name="application_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("withdrawal_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "submitted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "amount_requested > 0", name=op.f("ck_loan_applications_amount_positive")
        ),
        sa.CheckConstraint(
            "declared_monthly_income IS NULL OR declared_monthly_income > 0",
            name=op.f("ck_loan_applications_income_positive"),
        ),
        sa.CheckConstraint("term_months >= 1", name=op.f("ck_loan_applications_term_positive")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_loan_applications_version_positive")),
        sa.ForeignKeyConstraint(
            ["applicant_id"],
            ["applicants.id"],
            name=op.f("fk_loan_applications_applicant_id_applicants"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["loan_products.id"],
            name=op.f("fk_loan_applications_product_id_loan_products"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loan_applications")),
        sa.UniqueConstraint("reference", name=op.f("uq_loan_applications_reference")),
    )
    op.create_index(
        "ix_loan_applications_amount_requested_id",
        "loan_applications",
        ["amount_requested", "id"],
        unique=False,
    )
    op.create_index(
        "ix_loan_applications_applicant_id_submitted_at_id",
        "loan_applications",
        ["applicant_id", "submitted_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_loan_applications_product_id", "loan_applications", ["product_id"], unique=False
    )
    op.create_index(
        "ix_loan_applications_status_submitted_at_id",
        "loan_applications",
        ["status", "submitted_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_loan_applications_submitted_at_id",
        "loan_applications",
        ["submitted_at", "id"],
        unique=False,
    )
    op.create_index(
        "uq_loan_applications_one_open_per_applicant",
        "loan_applications",
        ["applicant_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('SUBMITTED', 'IN_REVIEW')"),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("application_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "APPROVED",
                "REJECTED",
                "REFERRED",
                name="decision_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column(
            "decided_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("approved_amount", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("annual_interest_rate", sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column("term_months", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "outcome = 'APPROVED' OR (approved_amount IS NULL AND annual_interest_rate IS NULL AND term_months IS NULL)",
            name=op.f("ck_decisions_terms_only_when_approved"),
        ),
        sa.CheckConstraint(
            "annual_interest_rate IS NULL OR annual_interest_rate BETWEEN 0 AND 100",
            name=op.f("ck_decisions_rate_range"),
        ),
        sa.CheckConstraint(
            "approved_amount IS NULL OR approved_amount > 0",
            name=op.f("ck_decisions_amount_positive"),
        ),
        sa.CheckConstraint(
            "length(reason) BETWEEN 1 AND 2000", name=op.f("ck_decisions_reason_length")
        ),
        sa.CheckConstraint(
            "term_months IS NULL OR term_months >= 1", name=op.f("ck_decisions_term_positive")
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["loan_applications.id"],
            name=op.f("fk_decisions_application_id_loan_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index(
        "ix_decisions_application_id_decided_at_id",
        "decisions",
        ["application_id", "decided_at", "id"],
        unique=False,
    )
    op.create_table(
        "loans",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("application_id", sa.BigInteger(), nullable=False),
        sa.Column("applicant_id", sa.BigInteger(), nullable=False),
        sa.Column("principal", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("annual_interest_rate", sa.Numeric(precision=9, scale=6), nullable=False),
        sa.Column("term_months", sa.Integer(), nullable=False),
        sa.Column(
            "amortization",
            sa.Enum(
                "ANNUITY",
                "EQUAL_PRINCIPAL",
                name="amortization",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "frequency",
            sa.Enum(
                "MONTHLY",
                "BIWEEKLY",
                "WEEKLY",
                name="frequency",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "day_count",
            sa.Enum(
                "THIRTY_360",
                "ACTUAL_365",
                name="day_count",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "APPROVED",
                "ACTIVE",
                "PAID_OFF",
                "WRITTEN_OFF",
                "CANCELLED",
                name="loan_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column(
            "approved_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("disbursed_on", sa.Date(), nullable=True),
        sa.Column("maturity_date", sa.Date(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "annual_interest_rate >= 0 AND annual_interest_rate <= 100",
            name=op.f("ck_loans_rate_range"),
        ),
        sa.CheckConstraint(
            "maturity_date IS NULL OR disbursed_on IS NULL OR maturity_date > disbursed_on",
            name=op.f("ck_loans_maturity_after_disbursement"),
        ),
        sa.CheckConstraint("principal > 0", name=op.f("ck_loans_principal_positive")),
        sa.CheckConstraint("term_months >= 1", name=op.f("ck_loans_term_positive")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_loans_version_positive")),
        sa.ForeignKeyConstraint(
            ["applicant_id"], ["applicants.id"], name=op.f("fk_loans_applicant_id_applicants")
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["loan_applications.id"],
            name=op.f("fk_loans_application_id_loan_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loans")),
        sa.UniqueConstraint("application_id", name=op.f("uq_loans_application_id")),
        sa.UniqueConstraint("reference", name=op.f("uq_loans_reference")),
    )
    op.create_index("ix_loans_applicant_id_id", "loans", ["applicant_id", "id"], unique=False)
    op.create_index("ix_loans_status_id", "loans", ["status", "id"], unique=False)
    # Append-only tables: the database itself refuses edits and deletions.
    op.execute(
        """
        CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'restrict_violation';
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions "
        "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER decisions_append_only ON decisions")
    op.execute("DROP FUNCTION refuse_change()")
    op.drop_index("ix_loans_status_id", table_name="loans")
    op.drop_index("ix_loans_applicant_id_id", table_name="loans")
    op.drop_table("loans")
    op.drop_index("ix_decisions_application_id_decided_at_id", table_name="decisions")
    op.drop_table("decisions")
    op.drop_index(
        "uq_loan_applications_one_open_per_applicant",
        table_name="loan_applications",
        postgresql_where=sa.text("status IN ('SUBMITTED', 'IN_REVIEW')"),
    )
    op.drop_index("ix_loan_applications_submitted_at_id", table_name="loan_applications")
    op.drop_index("ix_loan_applications_status_submitted_at_id", table_name="loan_applications")
    op.drop_index("ix_loan_applications_product_id", table_name="loan_applications")
    op.drop_index(
        "ix_loan_applications_applicant_id_submitted_at_id", table_name="loan_applications"
    )
    op.drop_index("ix_loan_applications_amount_requested_id", table_name="loan_applications")
    op.drop_table("loan_applications")
    op.drop_table("loan_products")
    op.drop_index("uq_applicants_email_lower", table_name="applicants")
    op.drop_index("ix_applicants_created_at_id", table_name="applicants")
    op.drop_table("applicants")
