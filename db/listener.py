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


class ChannelWatch:
    """A LISTEN on one channel, kept open while it is wanted; tells when it may have missed one.

    ``on_change`` runs for every notification and also when the connection is (re)opened or
    lost, since changes may have gone unheard meanwhile; ``listening`` says whether the watch
    can be trusted right now.
    """

    def __init__(self, url: str, channel: str, on_change: Any) -> None:
        self._url = url
        self._channel = channel
        self._on_change = on_change
        self._connection: Any = None
        self._lock = asyncio.Lock()
        self._failing = False  # warned once per outage, not once per attempt

    @property
    def listening(self) -> bool:
        """Whether notifications are being received."""
        return self._connection is not None and not self._connection.is_closed()

    async def ensure(self) -> bool:
        """Listen if not listening yet; False when the database cannot be reached."""
        if self.listening:
            return True
        async with self._lock:
            if self.listening:
                return True
            try:
                connection = await raw_connection(self._url)
                await connection.add_listener(self._channel, self._notified)
                connection.add_termination_listener(self._lost)
            except Exception as error:  # the caller goes without the watch meanwhile
                if not self._failing:
                    log.warning("cannot listen on %s: %s", self._channel, error)
                self._failing = True
                return False
            if self._failing:
                log.info("listening on %s again", self._channel)
            self._failing = False
            self._connection = connection
            self._on_change()
            return True

    def _notified(self, *_: Any) -> None:
        self._on_change()

    def _lost(self, *_: Any) -> None:
        self._connection = None
        self._on_change()

    async def close(self) -> None:
        """Stop listening."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            await connection.close()
