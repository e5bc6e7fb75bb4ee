"""The compiled reads' pool: a read cancelled mid-statement leaves nothing behind."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from db.reads.pool import ReadPool

# pg_sleep does not notice its client has gone, so it is short: what matters is what follows.
SLOW_READ = "SELECT (SELECT count(*) FROM applicants) || pg_sleep(0.5)::text"
ACTIVE_READS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE application_name = 'lending-reads' AND state = 'active' "
    "AND datname = current_database()"
)


async def test_a_cancelled_read_holds_no_lock_and_its_connection_is_not_reused(
    database_url, engine
):
    # given a read in flight on the pool (as when a sibling root field fails and graphql-core
    # cancels the others)
    pool = ReadPool(database_url, size=1)
    try:
        first_pid = await pool.fetch_text("SELECT pg_backend_pid()::text", [])
        task = asyncio.ensure_future(pool.fetch_text(SLOW_READ, []))
        # (on a busy machine the read may take a while to reach the server; cancelled before
        # it is sent, its connection would rightly be reused). Each look is a transaction of
        # its own: within one, pg_stat_activity stays as it was first read.
        for _ in range(500):
            async with engine.connect() as conn:
                if (await conn.scalar(text(ACTIVE_READS))) == 1:
                    break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the read never reached the server")

        # when it is cancelled
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

        # then the table can be locked at once, and the next read runs on a new connection
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL lock_timeout = '3s'"))
            await conn.execute(text("LOCK TABLE applicants IN ACCESS EXCLUSIVE MODE"))
        assert await pool.fetch_text("SELECT pg_backend_pid()::text", []) != first_pid
    finally:
        await pool.close()
