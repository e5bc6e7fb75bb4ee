"""The alembic migrations and the models describe the same schema."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from db.embedded import recreate_database
from db.migrate import alembic_config, head_revision
from db.models import Base
from db.session import create_engine


async def test_models_and_migrations_agree(engine):
    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == [], "models and migrations disagree: write a migration"


async def test_database_is_at_head(engine):
    async with engine.connect() as connection:
        version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    assert version == head_revision()


async def test_downgrade_to_base_and_upgrade_again(server_url):
    name = "lending_migration_roundtrip"
    url = await recreate_database(server_url, name)
    config = alembic_config(url)

    def roundtrip() -> None:
        command.upgrade(config, "head")
        command.downgrade(config, "base")
        command.upgrade(config, "head")

    await asyncio.to_thread(roundtrip)
    scratch = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with scratch.connect() as conn:
            tables = set(
                (
                    await conn.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                    )
                ).scalars()
            )
    finally:
        await scratch.dispose()
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
