"""One LISTEN connection per server process, fanning loan events out to subscribers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from db.repositories.events import CHANNEL
from db.session import raw_connection
from db.tasks import stop

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
RETRY_DELAYS = (0.1, 0.2, 0.5, 1.0)  # then every second until the database answers


@dataclass(eq=False)
class Notification:
    """One committed event as this process heard it, handed to every subscriber's queue.

    ``shared`` holds what subscribers read about it (keyed by the read), so that a thousand
    subscribers selecting the same thing cost one read, not a thousand.
    """

    payload: dict[str, Any]
    shared: dict[Any, Any] = field(default_factory=dict)


# Put in every subscriber's queue when events stop arriving because the database went away.
INTERRUPTED = Notification({"type": "__interrupted__"})
# Put in every subscriber's queue when the server process begins to shut down.
CLOSING = Notification({"type": "__closing__"})


class EventListener:
    """One LISTEN connection per process, kept up while the process runs; fans events out.

    When the connection is lost (a restart, a failover) every subscriber is told once
    (``INTERRUPTED`` in its queue: events committed meanwhile are not heard), and the listener
    reconnects by itself; subscribers keep their queues and hear events again once it has.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._queues: set[asyncio.Queue[Notification]] = set()
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._failing = asyncio.Event()  # the latest attempt to listen failed, or was lost
        self._connection: Any = None

    def _deliver(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self._broadcast(Notification(json.loads(payload)))

    def _broadcast(self, event: Notification) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("subscriber too slow: dropped event %s", event.payload.get("type"))

    async def _run(self) -> None:
        attempt, failing = 0, False
        while True:
            lost = asyncio.Event()
            try:
                connection = await raw_connection(self._url)
                await connection.add_listener(CHANNEL, self._deliver)
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
            except Exception as error:
                self._failing.set()
                if not failing:
                    log.warning("cannot listen for loan events (%s); retrying", error)
                    failing = True
                await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
                attempt += 1
                continue
            if failing:
                log.warning("listening for loan events again")
            attempt, failing = 0, False
            self._connection = connection
            self._failing.clear()
            self._listening.set()
            await lost.wait()
            self._connection = None
            self._listening.clear()
            self._failing.set()
            self._broadcast(INTERRUPTED)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Notification]]:
        """A queue receiving every event committed from now on, by any server process.

        It holds ``INTERRUPTED`` first when the database cannot be listened to right now: the
        subscriber waits for the listener's attempt to connect to end either way, however long
        it takes. (A time limit here told a few of 400 subscribers joining at once that events
        had stopped: the process was busy starting the others, not the database away.)
        """
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        queue: asyncio.Queue[Notification] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._queues.add(queue)
        try:
            if not self._listening.is_set() and not self._failing.is_set():
                await _first(self._listening, self._failing)
            if not self._listening.is_set():
                queue.put_nowait(INTERRUPTED)
            yield queue
        finally:
            self._queues.discard(queue)

    def closing(self) -> None:
        """Tell every subscriber that this process is shutting down (``CLOSING``)."""
        self._broadcast(CLOSING)

    async def close(self) -> None:
        """Stop listening."""
        task, self._task = self._task, None
        await stop(task)
        self._failing.set()  # nobody waits for it any more
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            await connection.close()


async def _first(*events: asyncio.Event) -> None:
    """Until one of ``events`` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


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
