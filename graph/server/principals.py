"""Who an API key belongs to, kept in the process until any key changes anywhere.

Every change to the api_keys table (a key created, revoked, deleted; by this service, the
command line or plain SQL) is announced on a PostgreSQL channel by a trigger, and every
server process empties its cache when it hears it: a revoked key stops working, and a new one
starts, within the time a notification takes to arrive. The cache is used only while the
process is listening; without the watch every request asks the database, as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

from db.listener import ChannelWatch
from lending.access import Principal

CHANNEL = "lending_api_keys"  # notified by the api_keys trigger (migration 0005)
MAX_ENTRIES = 10_000

Lookup = Callable[[str | None], Awaitable[Principal | None]]


class PrincipalCache:
    """Principals by Authorization header, emptied whenever an API key changes."""

    def __init__(self, url: str, lookup: Lookup) -> None:
        self._lookup = lookup
        self._entries: OrderedDict[str, Principal | None] = OrderedDict()
        self._generation = 0
        self.watch = ChannelWatch(url, CHANNEL, self.clear)

    def clear(self) -> None:
        """Forget every principal (a key changed, or changes may have gone unheard)."""
        self._generation += 1
        self._entries.clear()

    def cached(self, authorization: str | None) -> Principal | None:
        """The principal of a header already known to be valid, without any statement."""
        if authorization is None or not self.watch.listening:
            return None
        return self._entries.get(authorization)

    async def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal behind an Authorization header, from the cache when possible."""
        if authorization is not None and self.watch.listening and authorization in self._entries:
            return self._entries[authorization]
        trusted = await self.watch.ensure()
        generation = self._generation
        principal = await self._lookup(authorization)
        # A change heard while the lookup ran may have made its answer stale: don't keep it.
        if trusted and authorization is not None and generation == self._generation:
            self._entries[authorization] = principal
            if len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        return principal

    async def close(self) -> None:
        """Stop listening."""
        await self.watch.close()
