"""Who an API key belongs to, kept in the process until any key changes anywhere.

Every change to the api_keys table (a key created, revoked, deleted; by this service, the
command line or plain SQL) is announced on a PostgreSQL channel by a trigger, and every
server process empties its cache when it hears it: a revoked key stops working, and a new one
starts, within the time a notification takes to arrive. The cache is used only while the
process is listening; without the watch every request asks the database, as before.

Bearer tokens (JWT) are not API keys: they go to the token verifier (graph.server.tokens),
which remembers each until it expires.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

from db.listener import ChannelWatch
from graph.server.tokens import TokenRefused, TokenVerifier
from lending.access import Principal, bearer_credential, is_token

CHANNEL = "lending_api_keys"  # notified by the api_keys trigger (migration 0005)
MAX_ENTRIES = 10_000
NO_KEY = "Send a valid API key: Authorization: Bearer <key>."

Lookup = Callable[[str | None], Awaitable[Principal | None]]


class PrincipalCache:
    """Principals by Authorization header, emptied whenever an API key changes."""

    def __init__(self, url: str, lookup: Lookup, tokens: TokenVerifier | None = None) -> None:
        self._lookup = lookup
        self.tokens = tokens
        self._entries: OrderedDict[str, Principal | None] = OrderedDict()
        self._generation = 0
        self.watch = ChannelWatch(url, CHANNEL, self.clear)

    def clear(self) -> None:
        """Forget every principal (a key changed, or changes may have gone unheard)."""
        self._generation += 1
        self._entries.clear()

    def cached(self, authorization: str | None) -> Principal | None:
        """The principal of a header already known to be valid, without any statement."""
        token = self._token(authorization)
        if token is not None:
            return self.tokens.cached(token) if self.tokens is not None else None
        if authorization is None or not self.watch.listening:
            return None
        return self._entries.get(authorization)

    async def authenticate(self, authorization: str | None) -> Principal | None:
        """The principal behind an Authorization header, from the cache when possible."""
        token = self._token(authorization)
        if token is not None:
            if self.tokens is None:
                return None
            try:
                return await self.tokens.principal(token)
            except TokenRefused:
                return None
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

    async def refusal(self, authorization: str | None) -> str:
        """Why ``authorization`` (just refused) is refused, for the caller to read."""
        token = self._token(authorization)
        if token is None:
            return NO_KEY
        if self.tokens is None:
            return "Bearer tokens are not accepted by this service; send an API key."
        try:
            await self.tokens.principal(token)
        except TokenRefused as refused:
            return f"The bearer token is refused: {refused}."
        return NO_KEY  # valid by now (its keys were read meanwhile): ask again

    @staticmethod
    def _token(authorization: str | None) -> str | None:
        credential = bearer_credential(authorization)
        return credential if credential is not None and is_token(credential) else None

    async def close(self) -> None:
        """Stop listening."""
        await self.watch.close()
