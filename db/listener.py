"""One LISTEN connection per server process, fanning loan events out to subscribers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from db.repositories.events import CHANNEL
from db.session import raw_connection

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000


class EventListener:
    """Listens on the events channel while anyone subscribes; every subscriber gets every event."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: Any = None
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self._lock = asyncio.Lock()

    async def _ensure_listening(self) -> None:
        async with self._lock:
            if self._connection is None or self._connection.is_closed():
                self._connection = await raw_connection(self._url)
                await self._connection.add_listener(CHANNEL, self._deliver)

    def _deliver(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        event = json.loads(payload)
        for queue in list(self._queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("subscriber too slow: dropped event %s", event.get("type"))

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue receiving every event committed from now on, by any server process."""
        await self._ensure_listening()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    async def close(self) -> None:
        """Stop listening."""
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()
        self._connection = None
