"""Configuration, read once from the environment (and an optional .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting of the service; the defaults suit the local demo."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    lending_env: Literal["development", "production"] = Field(
        default="development", description="'production' turns off demo conveniences."
    )
    database_url: str | None = Field(
        default=None, description="PostgreSQL URL; unset means the embedded server in pg_data_dir."
    )
    pg_data_dir: Path = Field(
        default=ROOT / ".pgdata", description="Folder of the embedded PostgreSQL."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    access_log: bool = Field(default=True, description="Log every HTTP request (uvicorn).")
    db_pool_size: int = 10
    db_max_overflow: int = 10
    graphiql: bool | None = Field(
        default=None, description="Serve GraphiQL on GET /graphql; default: not in production."
    )
    introspection: bool | None = Field(
        default=None, description="Allow schema introspection; default: not in production."
    )
    compiled_reads: bool = Field(
        default=True,
        description="Answer compilable query root fields with one SQL statement each "
        "(`off`: every field through its resolver).",
    )
    max_query_depth: int = Field(default=15, description="Deepest selection nesting allowed.")
    max_aliases: int = Field(default=30, description="Most aliases in one operation.")
    max_tokens: int = Field(default=5000, description="Most lexical tokens in one document.")
    max_query_cost: int = Field(
        default=50_000,
        description="Most nodes one query may return: connections count `first` times their "
        "selection, as GitHub does.",
    )

    @property
    def production(self) -> bool:
        """Whether demo conveniences are off."""
        return self.lending_env == "production"

    @property
    def introspection_enabled(self) -> bool:
        """Introspection is on unless turned off, or in production unless turned on."""
        if self.introspection is not None:
            return self.introspection
        return not self.production

    @property
    def graphiql_enabled(self) -> bool:
        """GraphiQL is on unless turned off, or in production unless turned on."""
        if self.graphiql is not None:
            return self.graphiql
        return self.lending_env != "production"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings."""
    return Settings()
