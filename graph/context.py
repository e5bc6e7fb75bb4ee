"""The typed per-request context that every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.fastapi import BaseContext

from db.session import RequestSession
from graph.loaders import Loaders

# Until API keys exist every caller acts under this name, recorded on decisions.
ANONYMOUS_ACTOR = "anonymous"


@dataclass
class Context(BaseContext):
    """What a resolver may use: loaders for reads, a session factory for writes, who asks."""

    request_id: str
    sessionmaker: async_sessionmaker[AsyncSession]
    db: RequestSession
    actor: str = ANONYMOUS_ACTOR
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.db)


Info = strawberry.Info[Context, None]
