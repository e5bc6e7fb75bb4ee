"""A load that several fields share outlives a cancelled wait, and the request's session is
given back only once it is done.

The executor cancels the siblings of a field that failed; a field elsewhere in the document
waiting for the same load must still get its answer, and the load's later statements must
not run on a session being closed (asyncpg: "another operation is in progress").
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from db.session import RequestSession, create_sessionmaker
from graph.loaders import SharedLoader


async def test_a_cancelled_wait_leaves_the_shared_load_to_the_others(engine):
    db = RequestSession(create_sessionmaker(engine))
    statements: list[int] = []

    async def load(keys: list[int]) -> list[int]:
        # two statements, as a loader with two groups of arguments sends
        for key in keys:
            statements.append(await db.run(lambda s, k=key: s.scalar(text(f"SELECT {k}"))))
            await asyncio.sleep(0.05)
        return [k * 10 for k in keys]

    loader = SharedLoader(db, load)
    cancelled = asyncio.ensure_future(loader.load(1))
    other = loader.load(1)
    second = loader.load(2)
    await asyncio.sleep(0.01)  # the batch is under way
    cancelled.cancel()
    assert await other == 10
    assert await second == 20
    assert cancelled.cancelled()
    await db.close()


async def test_the_session_is_given_back_after_a_load_nobody_waits_for(engine):
    db = RequestSession(create_sessionmaker(engine))
    sent: list[int] = []

    async def load(keys: list[int]) -> list[int]:
        for key in keys:
            await asyncio.sleep(0.05)
            sent.append(await db.run(lambda s, k=key: s.scalar(text(f"SELECT {k}"))))
        return keys

    loader = SharedLoader(db, load)
    waits = [asyncio.ensure_future(loader.load(key)) for key in (1, 2, 3)]
    await asyncio.sleep(0.01)
    for wait in waits:
        wait.cancel()
    await db.close()  # the request is over: it waits for the load, then gives the session back
    assert sent == [1, 2, 3]
    assert engine.pool.checkedout() == 0
