"""The process's one LISTEN connection: a subscriber is told events were interrupted when the
database cannot be listened to, and only then; however long connecting takes, it hears what
comes after."""

from __future__ import annotations

import asyncio
import json
import time

import db.listener as listener_module
from db.listener import INTERRUPTED, EventListener
from db.repositories.events import CHANNEL
from db.session import raw_connection


async def _notify(url: str, payload: dict) -> None:
    connection = await raw_connection(url)
    try:
        await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, json.dumps(payload))
    finally:
        await connection.close()


async def test_a_subscriber_waits_for_a_slow_connection_and_hears_what_follows(
    database_url, monkeypatch
):
    # connecting takes a while, as when the process is busy starting 400 other subscriptions
    async def slow(url: str):
        await asyncio.sleep(0.5)
        return await raw_connection(url)

    monkeypatch.setattr(listener_module, "raw_connection", slow)
    events = EventListener(database_url)
    try:
        async with events.subscribe() as queue:
            assert queue.empty()  # not told that events stopped: they never did
            await _notify(database_url, {"type": "SUBMITTED"})
            heard = await asyncio.wait_for(queue.get(), 10)
            assert heard.payload == {"type": "SUBMITTED"}
    finally:
        await events.close()


async def test_a_subscriber_is_told_at_once_when_the_database_cannot_be_listened_to():
    events = EventListener("postgresql://lending@127.0.0.1:1/lending")  # nothing listens there
    began = time.monotonic()
    try:
        async with events.subscribe() as queue:
            assert queue.get_nowait() is INTERRUPTED
            assert time.monotonic() - began < 5
            # a second subscriber, while it keeps trying, is told at once too
            async with events.subscribe() as other:
                assert other.get_nowait() is INTERRUPTED
    finally:
        await events.close()
