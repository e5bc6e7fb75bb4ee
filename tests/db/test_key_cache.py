"""API keys are known to each server process without a statement, yet a change to any key
takes effect on every process within a second (the api_keys trigger announces it)."""

from __future__ import annotations

import asyncio
import time

import httpx

from db.repositories import api_keys as key_repo
from db.session import create_engine, create_sessionmaker
from lending.access import Role, hash_api_key
from lending.services import api_keys as key_service
from tests.servers import servers

QUERY = {"query": "{ loanProducts { code } }"}
NEW_KEY = "lnd_test_new_key_0123456789"


async def status(port: int, key: str) -> int:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        response = await client.post(
            "/graphql", json=QUERY, headers={"Authorization": f"Bearer {key}"}
        )
        return response.status_code


async def seconds_until(ports: tuple[int, ...], key: str, expected: int) -> float:
    """How long until every process answers ``expected`` for ``key`` (at most 5 s)."""
    began = time.perf_counter()
    waiting = set(ports)
    while waiting and time.perf_counter() - began < 5:
        waiting = {port for port in waiting if await status(port, key) != expected}
        await asyncio.sleep(0.01)
    assert not waiting, f"processes on {waiting} still answer otherwise"
    return time.perf_counter() - began


async def test_a_revoked_key_stops_working_on_every_process_within_a_second(server_url):
    async with servers(server_url, "lending_key_cache_test") as found:
        # given a key each process has served (and so knows without asking the database)
        for port in found.ports:
            assert await status(port, found.key) == 200
            assert await status(port, found.key) == 200
        # when it is revoked by another program (the command line, in its own transaction)
        engine = create_engine(found.url, pool_size=1, max_overflow=0)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                await key_service.revoke_key(session, "ops")
        finally:
            await engine.dispose()
        # then every process refuses it within a second
        assert await seconds_until(found.ports, found.key, 401) < 1.0


async def test_a_new_key_works_on_every_process_within_a_second(server_url):
    async with servers(server_url, "lending_key_cache_test") as found:
        # given a key that every process has refused (and remembers refusing)
        for port in found.ports:
            assert await status(port, NEW_KEY) == 401
            assert await status(port, NEW_KEY) == 401
        # when it is created
        engine = create_engine(found.url, pool_size=1, max_overflow=0)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                await key_repo.add_key(
                    session, name="newcomer", role=Role.AGENT, key_hash=hash_api_key(NEW_KEY)
                )
        finally:
            await engine.dispose()
        # then every process accepts it within a second
        assert await seconds_until(found.ports, NEW_KEY, 200) < 1.0
