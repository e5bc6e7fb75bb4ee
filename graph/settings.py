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
    db_pool_size: int = 10
    db_max_overflow: int = 10
    graphiql: bool | None = Field(
        default=None, description="Serve GraphiQL on GET /graphql; default: not in production."
    )
    max_page_size: int = 100

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
