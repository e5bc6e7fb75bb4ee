"""The typed per-request context that every resolver receives.

The context holds the compiled read path (graph.compiled) through the two small protocols
below, so that it, and every resolver that imports it, depends on no part of the compiler: the
server puts the compiler's objects in, and only the compiler's executor uses them.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.extensions import SchemaExtension
from strawberry.fastapi import BaseContext
from strawberry.types.graphql import OperationType

from db.listener import EventListener
from db.session import RequestSession
from graph.budgets import CostBudgets
from graph.loaders import Loaders
from lending.access import Principal, Role, bearer_credential

Authenticate = Callable[[str | None], Awaitable[Principal | None]]
# Why an Authorization header was refused (graph.server.principals.PrincipalCache.refusal).
Refusal = Callable[[str | None], Awaitable[str]]


class RequestReads(Protocol):
    """One HTTP request's view of the compiled read path (graph.compiled.executor)."""

    def root(self, executor: Any, key: str) -> Awaitable[Any] | None:
        """The compiled answer of root field ``key``, or None to resolve it per field."""


class EventReads(Protocol):
    """The compiled read path as subscription events read their objects
    (graph.compiled.executor)."""

    def plan_same_as(self, executor: Any, parent: Any, key: str, details: Any) -> Any:
        """The plan of an event's object field for the executor's caller, or None."""

    def bind(self, plan: Any, slots: tuple[int, ...], variables: Any) -> dict[int, Any] | None:
        """A request's bound slots, or None when the per-field path must answer."""

    async def run_shared(self, compiled: Any, bound: dict[int, Any], shared: Any) -> Any:
        """A root's JSON, read once for every caller holding ``shared``."""


@dataclass
class Context(BaseContext):
    """What a resolver may use: loaders for reads, a session factory for writes, who asks."""

    request_id: str
    sessionmaker: async_sessionmaker[AsyncSession]
    db: RequestSession
    authenticate: Authenticate
    events: EventListener
    principal: Principal | None = None
    reads: RequestReads | None = None  # the compiled read path, for HTTP requests when on
    compiled: EventReads | None = None  # the compiled read path of events' objects, when on
    over_websocket: bool = False  # a WebSocket connection (else an HTTP request)
    budgets: CostBudgets | None = None  # the keys' buckets of cost points (graph.budgets)
    shares: Any = None  # the keys' places in the process (graph.server.shares.KeyShares)
    refusal: Refusal | None = None  # why a refused Authorization header was refused
    loaders: Loaders = field(init=False)
    dry_run: AsyncSession | None = field(init=False, default=None)
    # A borrower's applicant key by their email, once found (graph.scope.owner_key).
    owners: dict[str, int | None] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.db)

    async def hold_dry_run(self, session: AsyncSession) -> None:
        """Keep a dry run's transaction open while its payload is read, through it."""
        await self.db.adopt(session)
        self.dry_run = session

    async def end_dry_run(self) -> None:
        """Roll a held dry run back: nothing of it remains, not even in the loaders."""
        session, self.dry_run = self.dry_run, None
        if session is None:
            return
        await self.db.release()
        try:
            await session.rollback()
        finally:
            await session.close()
            self.loaders = Loaders(self.db)

    def for_event(self) -> Context:
        """The context of one subscription event: the caller's, with loaders and a session of
        its own, so that an event's reads see what was committed before it, and hold no
        connection once it is answered (``close_event``)."""
        event = copy.copy(self)
        event.db = RequestSession(self.sessionmaker)
        event.loaders = Loaders(event.db)
        event.dry_run = None
        event.owners = {}
        return event

    async def close_event(self) -> None:
        """Give back an event's connection (see ``for_event``)."""
        await self.db.close()

    async def authenticated(self) -> Principal | None:
        """The caller; over a websocket, from the connection's Authorization parameter."""
        if self.principal is None and isinstance(self.connection_params, dict):
            self.principal = await self.authenticate(self._authorization())
        return self.principal

    async def refused(self) -> str:
        """Why the caller is not authenticated (``authenticated`` gave None)."""
        if self.refusal is None:
            return "Send a valid API key: Authorization: Bearer <key>."
        return await self.refusal(self._authorization())

    def credential(self) -> str | None:
        """The key or token a WebSocket's connection_init payload sends (None over HTTP)."""
        return bearer_credential(self._authorization())

    def _authorization(self) -> str | None:
        params = self.connection_params if isinstance(self.connection_params, dict) else {}
        header = params.get("Authorization") or params.get("authorization")
        return header if isinstance(header, str) else None

    @property
    def role(self) -> Role:
        """The caller's role (resolvers below a guarded root field run for a known caller)."""
        assert self.principal is not None, "fields are resolved only for authenticated callers"
        return self.principal.role

    @property
    def actor(self) -> str:
        """The name recorded on what this caller does."""
        assert self.principal is not None, "mutations run only for authenticated callers"
        return self.principal.name


class QueriesMayReadFromReplica(SchemaExtension):
    """Tells the request's session once the operation is known to be a query: only then may
    its reads go to a replica (a mutation's payload must see what it wrote, on the primary)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context):
            try:
                query = self.execution_context.operation_type is OperationType.QUERY
            except Exception:  # no such operation: execution reports it
                query = False
            if query:
                context.db.for_query()
        yield


Info = strawberry.Info[Context, None]
