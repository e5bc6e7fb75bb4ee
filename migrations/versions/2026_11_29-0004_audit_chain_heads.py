"""Audit chain heads: each chain's last hash, kept by the database as events are appended.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_chain_heads",
        sa.Column("chain", sa.String(length=100), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "last_hash ~ '^[0-9a-f]{64}$'", name=op.f("ck_audit_chain_heads_last_hash_format")
        ),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_chain_heads")),
    )
    # Every insert, whoever makes it, must link to its chain's head and moves the head on: a
    # fork (two events after one hash) is refused instead of being found later by verify.
    op.execute(
        """
        CREATE FUNCTION audit_events_advance_head() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE audit_chain_heads SET last_hash = NEW.hash
             WHERE chain = NEW.chain AND last_hash IS NOT DISTINCT FROM NEW.previous_hash;
            IF NOT FOUND THEN
                IF NEW.previous_hash IS NOT NULL
                   OR EXISTS (SELECT FROM audit_chain_heads WHERE chain = NEW.chain) THEN
                    RAISE EXCEPTION 'audit event on % does not follow the chain''s last hash',
                        NEW.chain USING ERRCODE = 'integrity_constraint_violation';
                END IF;
                INSERT INTO audit_chain_heads (chain, last_hash) VALUES (NEW.chain, NEW.hash);
            END IF;
            RETURN NEW;
        END $$
        """
    )
    # No event may be appended while the heads are copied from the events.
    op.execute("LOCK TABLE audit_events IN SHARE MODE")
    op.execute(
        "INSERT INTO audit_chain_heads (chain, last_hash) "
        "SELECT DISTINCT ON (chain) chain, hash FROM audit_events ORDER BY chain, id DESC"
    )
    op.execute(
        "CREATE TRIGGER audit_events_advance_head BEFORE INSERT ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_advance_head()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_events_advance_head ON audit_events")
    op.execute("DROP FUNCTION audit_events_advance_head()")
    op.drop_table("audit_chain_heads")
