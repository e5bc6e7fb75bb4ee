"""Announce every change to api_keys, so each server process drops the principals it cached.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One notification per statement; PostgreSQL delivers it when the transaction commits.
    op.execute(
        """
        CREATE FUNCTION notify_api_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('lending_api_keys', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER api_keys_notify_change
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys
        FOR EACH STATEMENT EXECUTE FUNCTION notify_api_key_change()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER api_keys_notify_change ON api_keys")
    op.execute("DROP FUNCTION notify_api_key_change()")
