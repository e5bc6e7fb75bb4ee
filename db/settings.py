"""The database settings, read from the environment: where PostgreSQL is, and the pool."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class DatabaseSettings(BaseSettings):
    """How the service reaches PostgreSQL; the defaults start an embedded server for the demo."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset means the embedded server in pg_data_dir."
    )
    pg_data_dir: Path = Field(
        default=ROOT / ".pgdata", description="Folder of the embedded PostgreSQL."
    )
    db_pool_size: int = Field(
        default=10,
        description="Connections each server process keeps open (compiled reads keep a second "
        "pool of up to as many).",
    )
    db_max_overflow: int = Field(
        default=10, description="Connections a process may open beyond the pool under load."
    )
    db_pool_timeout: float = Field(
        default=5.0,
        description="Seconds a request waits for a free connection (or to connect) before it is "
        "answered 503 SERVICE_UNAVAILABLE.",
    )
    db_statement_timeout: float = Field(
        default=15.0,
        description="Seconds one SQL statement may run before PostgreSQL cancels it (the request "
        "is answered 503); 0 for no limit.",
    )
    db_lock_timeout: float = Field(
        default=3.0,
        description="Seconds a statement may wait for a row lock (another writer's) before "
        "PostgreSQL refuses it and the request is answered a retryable 503; 0 for no limit.",
    )
    database_replica_url: str | None = Field(
        default=None,
        description="PostgreSQL URL of a streaming replica of DATABASE_URL that queries read "
        "from while it keeps up; mutations (their payloads too), subscriptions, API keys and "
        "/readyz always use DATABASE_URL. Unset: everything reads from DATABASE_URL.",
    )
    db_pooler: Literal["none", "transaction"] = Field(
        default="none",
        description="`transaction` when DATABASE_URL is a pooler in transaction mode (PgBouncer "
        "pool_mode=transaction, RDS Proxy, Supavisor): no prepared statement outlives its "
        "transaction, the timeouts are set in every transaction (SET LOCAL), and LISTEN and "
        "migrations use DATABASE_LISTEN_URL.",
    )
    database_listen_url: str | None = Field(
        default=None,
        description="A direct connection to the primary (not through the pooler), for LISTEN "
        "(subscriptions, the API key cache) and migrations; required with DB_POOLER=transaction. "
        "Unset: DATABASE_URL.",
    )
    replica_max_lag_ms: float = Field(
        default=1000.0,
        description="Milliseconds the replica may be behind the primary before queries read from "
        "the primary instead (until it catches up).",
    )

    @model_validator(mode="after")
    def _a_pooler_needs_a_direct_connection(self) -> DatabaseSettings:
        if self.pooled and not (self.database_url and self.database_listen_url):
            raise ValueError(
                "DB_POOLER=transaction needs DATABASE_URL (the pooler) and DATABASE_LISTEN_URL (a "
                "direct connection to the primary, for LISTEN and migrations): a transaction "
                "pooler cannot hold a LISTEN."
            )
        return self

    @property
    def pooled(self) -> bool:
        """DATABASE_URL is a pooler in transaction mode."""
        return self.db_pooler == "transaction"

    def direct_url(self, url: str) -> str:
        """Where LISTEN and migrations go for the database at ``url`` (DATABASE_URL's, or the
        embedded server's): DATABASE_LISTEN_URL when set, else ``url`` itself."""
        return self.database_listen_url or url
