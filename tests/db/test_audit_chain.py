"""Audit chain heads: appends to one chain take turns, forks are refused, upgrades backfill."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from db.embedded import recreate_database
from db.migrate import alembic_config
from db.models import Decision
from db.repositories import idempotency
from db.repositories.idempotency import StoredResult
from db.session import create_engine, create_sessionmaker
from lending.audit import AuditAction, Caller, event_hash
from lending.services import audit as audit_service
from lending.states import DecisionOutcome


def marker(key: int) -> Decision:
    """A row to record (never stored: the audit trail only snapshots it)."""
    return Decision(
        id=key,
        application_id=1,
        outcome=DecisionOutcome.REFERRED,
        reason=f"poke {key}",
        decided_by="tester",
    )


CHAIN = text("SELECT previous_hash, hash FROM audit_events WHERE chain = :c ORDER BY id")


async def chain_rows(engine, chain: str):
    """The chain's committed events, in order."""
    async with engine.connect() as connection:
        return (await connection.execute(CHAIN, {"c": chain})).all()


async def head_of(engine, chain: str) -> str | None:
    async with engine.connect() as connection:
        return await connection.scalar(
            text("SELECT last_hash FROM audit_chain_heads WHERE chain = :c"), {"c": chain}
        )


async def submitted(session, key: int, application_id: int, caller: Caller | None = None) -> None:
    """Record one submission of ``marker(key)`` on the application's chain."""
    await audit_service.record(
        session,
        caller or Caller("tester"),
        audit_service.Change(AuditAction.APPLICATION_SUBMITTED, marker(key)),
        application_id=application_id,
    )


async def test_concurrent_appends_to_one_chain_take_turns(engine):
    # given a chain with an event, and 20 transactions appending to it at once with no other
    # lock between them, each holding its transaction open a little after appending
    async def append(i: int) -> None:
        async with create_sessionmaker(engine)() as session, session.begin():
            await audit_service.record(
                session,
                Caller(f"agent-{i}"),
                audit_service.Change(AuditAction.APPLICATION_SUBMITTED, marker(i)),
                audit_service.Change(AuditAction.LOAN_REOPENED, marker(i)),
                application_id=42,
            )
            await asyncio.sleep(0.02)

    await append(0)
    await asyncio.gather(*(append(i) for i in range(1, 21)))

    # then every event links to the one before it, and the head is the last hash
    rows = await chain_rows(engine, "application:42")
    assert len(rows) == 42
    assert [r.previous_hash for r in rows] == [None] + [r.hash for r in rows[:-1]]
    assert await head_of(engine, "application:42") == rows[-1].hash
    async with create_sessionmaker(engine)() as session:
        assert (await audit_service.verify(session)).broken is None


async def test_an_event_that_does_not_follow_the_head_is_refused(engine):
    async with create_sessionmaker(engine)() as session, session.begin():
        await audit_service.record(
            session,
            Caller("tester"),
            audit_service.Change(AuditAction.APPLICATION_SUBMITTED, marker(1)),
            application_id=7,
        )
    first = (await chain_rows(engine, "application:7"))[0]
    insert = text(
        "INSERT INTO audit_events (chain, actor, action, entity_type, entity_id, at, "
        "previous_hash, hash) VALUES ('application:7', 'mallory', 'x', 'Decision', 'Decision:1', "
        "now(), :previous, :hash)"
    )
    # a second start of the chain, and a fork after an event that is no longer the last
    for previous in (None, "0" * 64):
        with pytest.raises(DBAPIError, match="does not follow"):
            async with engine.begin() as connection:
                await connection.execute(insert, {"previous": previous, "hash": "f" * 64})
    # the event that follows the head is taken
    async with engine.begin() as connection:
        await connection.execute(insert, {"previous": first.hash, "hash": "e" * 64})
    assert await head_of(engine, "application:7") == "e" * 64


async def test_a_kept_append_links_to_the_one_before_and_rides_with_the_stored_result(engine):
    # given a session whose appends are kept for the end, as a mutation's are, and a claimed key
    caller = Caller("agent", idempotency_key="k-1")
    async with create_sessionmaker(engine)() as session, session.begin():
        audit_service.defer_append(session)
        await idempotency.claim(
            session, actor="agent", key="k-1", operation="poke", request_hash="h"
        )
        # when two changes are recorded one after the other, on one chain
        for key in (1, 2):
            await submitted(session, key, 11, caller)
        # then the first is written when the second is recorded, the second only at the end
        assert len(await chain_rows_in(session, "application:11")) == 1
        await audit_service.finish(session, StoredResult("agent", "k-1", {"made": [1]}))
        assert len(await chain_rows_in(session, "application:11")) == 2

    # and both are committed, linked, with the key's result
    rows = await chain_rows(engine, "application:11")
    assert [r.previous_hash for r in rows] == [None, rows[0].hash]
    assert await head_of(engine, "application:11") == rows[1].hash
    async with engine.connect() as connection:
        result = await connection.scalar(
            text("SELECT result FROM idempotency_keys WHERE actor = 'agent' AND key = 'k-1'")
        )
    assert result == {"made": [1]}


async def test_a_commit_with_a_kept_append_is_refused_and_writes_nothing(engine):
    # given a change recorded in a session whose appends are kept for the end
    async def commit_without_finishing() -> None:
        async with create_sessionmaker(engine)() as session, session.begin():
            audit_service.defer_append(session)
            await submitted(session, 3, 12)

    # when it commits without writing what it kept, it is refused
    with pytest.raises(RuntimeError, match="never written"):
        await commit_without_finishing()
    # and nothing of it is committed: the change is never stored without its audit events
    assert await chain_rows(engine, "application:12") == []
    assert await head_of(engine, "application:12") is None


async def test_a_savepoint_released_while_an_append_is_kept_commits_nothing_and_is_let_through(
    engine,
):
    # given a change recorded in a session whose appends are kept for the end
    async with create_sessionmaker(engine)() as session, session.begin():
        audit_service.defer_append(session)
        await submitted(session, 4, 13)
        # when a savepoint is released after it (SQLAlchemy calls that a commit, too)
        async with session.begin_nested():
            await session.execute(text("SELECT 1"))
        # and the kept append is written before the transaction commits
        await audit_service.finish(session)
    # then the change's event is committed
    assert len(await chain_rows(engine, "application:13")) == 1


async def chain_rows_in(session, chain: str):
    """The chain's events as ``session``'s transaction sees them."""
    return (await session.execute(CHAIN, {"c": chain})).all()


async def test_a_chain_without_a_head_gets_one_when_first_appended(engine):
    # given an existing application's chain without events or head (as rows loaded in bulk)
    assert await head_of(engine, "application:9") is None
    # when it is first appended to (not as a new application's chain)
    async with create_sessionmaker(engine)() as session, session.begin():
        await audit_service.record(
            session,
            Caller("tester"),
            audit_service.Change(AuditAction.APPLICATION_SUBMITTED, marker(2)),
            application_id=9,
        )
    # then the chain starts there and has a head
    rows = await chain_rows(engine, "application:9")
    assert [r.previous_hash for r in rows] == [None]
    assert await head_of(engine, "application:9") == rows[0].hash


async def test_upgrading_sets_each_chain_head_to_its_last_event(server_url):
    # given a database at revision 0003 whose audit trail has two chains
    name = "lending_audit_heads_upgrade"
    url = await recreate_database(server_url, name)
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, "0003")
    scratch = create_engine(url, pool_size=1, max_overflow=0)
    try:
        last: dict[str, str | None] = {"application:1": None, "application:2": None}
        async with scratch.begin() as conn:
            for n, chain in enumerate(["application:1", "application:2", "application:1"]):
                content = {"chain": chain, "n": n}
                digest = event_hash(last[chain], content)
                await conn.execute(
                    text(
                        "INSERT INTO audit_events (chain, actor, action, entity_type, entity_id, "
                        "at, previous_hash, hash) VALUES (:chain, 'old', 'x', 'T', 'T:1', now(), "
                        ":previous, :hash)"
                    ),
                    {"chain": chain, "previous": last[chain], "hash": digest},
                )
                last[chain] = digest

        # when it is upgraded
        await asyncio.to_thread(command.upgrade, config, "head")

        # then each chain's head is its last event's hash, and appends carry on from there
        async with scratch.connect() as conn:
            heads = dict(
                (await conn.execute(text("SELECT chain, last_hash FROM audit_chain_heads"))).all()
            )
        assert heads == last
        async with create_sessionmaker(scratch)() as session, session.begin():
            await audit_service.record(
                session,
                Caller("tester"),
                audit_service.Change(AuditAction.APPLICATION_SUBMITTED, marker(1)),
                application_id=1,
            )
        async with scratch.connect() as conn:
            previous = await conn.scalar(
                text("SELECT previous_hash FROM audit_events ORDER BY id DESC LIMIT 1")
            )
        assert previous == last["application:1"]
    finally:
        await scratch.dispose()
