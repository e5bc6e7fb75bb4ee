"""Configuration, read once from the environment (and an optional .env file).

The database's own settings (URL, embedded server, pool) are db.settings'; the service's
settings add what the HTTP server and the GraphQL layer need.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from db.settings import DatabaseSettings
from graph.limits import QueryLimits
from lending.access import Budget


class Settings(DatabaseSettings):
    """Every setting of the service; the defaults suit the local demo."""

    lending_env: Literal["development", "production"] = Field(
        default="development", description="'production' turns off demo conveniences."
    )
    lending_demo: bool = Field(
        default=False,
        description="Set by `lending serve --demo`: GraphiQL opens with the demo ADMIN key in "
        "its headers. Refused in production.",
    )
    host: str = Field(default="127.0.0.1", description="Address `lending serve` listens on.")
    port: int = Field(default=8000, description="Port `lending serve` listens on.")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: Literal["text", "json"] | None = Field(
        default=None,
        description="`text` or `json` (one object a line); default: json in production, text "
        "otherwise.",
    )
    metrics: bool = Field(default=True, description="Serve Prometheus metrics on GET /metrics.")
    metrics_token: str | None = Field(
        default=None,
        min_length=16,
        description="When set, GET /metrics needs `Authorization: Bearer <token>` (401 "
        "otherwise). Required in production unless METRICS=off: the metrics name operations, "
        "error codes and pool saturation.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector (e.g. http://127.0.0.1:4318) to send traces to; unset: "
        "no tracing at all.",
    )
    otel_service_name: str = Field(default="lending", description="Service name in traces.")
    access_log: bool = Field(default=True, description="Log every HTTP request (uvicorn).")
    keep_alive_timeout: float = Field(
        default=75.0,
        description="Seconds an idle keep-alive connection stays open. Keep it above a load "
        "balancer's idle timeout (60 s on most), or it may reuse a connection being closed.",
    )
    max_request_bytes: int = Field(
        default=1 << 20, description="Largest request body accepted; larger ones get HTTP 413."
    )
    max_json_depth: int = Field(
        default=32,
        ge=4,
        description="How deeply a GraphQL request's JSON (body, variables, extensions) may nest "
        "objects and arrays; deeper ones get HTTP 400 BAD_REQUEST before they are parsed.",
    )
    shutdown_timeout: float = Field(
        default=10.0,
        description="Seconds in-flight requests get to finish after SIGTERM before they are "
        "cancelled; subscriptions are closed with code 1012 (service restart).",
    )
    shutdown_drain: float = Field(
        default=0.0,
        ge=0,
        description="Seconds a process goes on serving after SIGTERM while /readyz answers 503, "
        "so that a load balancer takes it out before it stops taking connections; behind one, "
        "set it above the balancer's health-check interval times its fall count. SIGINT does "
        "not wait.",
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated origins (scheme://host[:port]) whose pages may call the API "
        "from a browser; empty: none (same origin only); `*`: any, unless credentials are "
        "allowed.",
    )
    cors_allow_credentials: bool = Field(
        default=False,
        description="Let browsers send cookies and HTTP authentication with cross-origin calls "
        "(not needed for bearer keys); refused together with CORS_ORIGINS=*.",
    )
    gzip_min_bytes: int = Field(
        default=2048,
        description="Compress responses of at least this many bytes with gzip when the client "
        "accepts it; 0: never.",
    )
    graphiql: bool | None = Field(
        default=None, description="Serve GraphiQL on GET /graphql; default: not in production."
    )
    graphiql_assets: Path = Field(
        default=Path(".graphiql"),
        description="Folder of GraphiQL's and the demo dashboard's scripts (`make "
        "graphiql-assets`): served under /graphql/assets/ and /dashboard/assets/, and named by "
        "a page when it holds all of that page's; otherwise the page loads them from the CDN.",
    )
    introspection: bool | None = Field(
        default=None, description="Allow schema introspection; default: not in production."
    )
    compiled_reads: bool = Field(
        default=True,
        description="Answer compilable query root fields with one SQL statement each "
        "(`off`: every field through its resolver).",
    )
    max_query_depth: int = Field(
        default=QueryLimits.max_query_depth, description="Deepest selection nesting allowed."
    )
    max_aliases: int = Field(
        default=QueryLimits.max_aliases, description="Most aliases in one operation."
    )
    max_expanded_fields: int = Field(
        default=QueryLimits.max_expanded_fields,
        description="Most fields one operation may hold with its fragments expanded (each "
        "spread counts its fragment's fields again); more: QUERY_TOO_COMPLEX.",
    )
    max_document_chars: int = Field(
        default=QueryLimits.max_document_chars,
        description="Longest GraphQL document accepted, in characters; longer ones are refused "
        "before they are parsed (QUERY_TOO_COMPLEX): send long values as variables.",
    )
    max_tokens: int = Field(
        default=QueryLimits.max_tokens, description="Most lexical tokens in one document."
    )
    max_query_cost: int = Field(
        default=QueryLimits.max_query_cost,
        description="Most nodes one query may return, as GitHub counts them: connections count "
        "`first` times their selection, plain lists their longest possible length (2 "
        "decisions, 2,600 instalments).",
    )
    persisted_operations_only: bool = Field(
        default=False,
        description="Run only the catalogue's operations (graph/agents/operations), sent by their "
        "sha256 or as their exact text; recommended in production, where no client should need "
        "any other document.",
    )
    key_max_concurrency: int = Field(
        default=0,
        ge=0,
        description="Most GraphQL requests of one key at work at once in a process; more wait "
        "(KEY_QUEUE_WAIT_S) and are then answered 429 THROTTLED. 0: half the database pool "
        "(DB_POOL_SIZE), at least one.",
    )
    key_queue_wait_s: float = Field(
        default=2.0,
        gt=0,
        description="Seconds a request beyond its key's KEY_MAX_CONCURRENCY waits for a place "
        "before it is answered 429 THROTTLED.",
    )
    lending_api_key: str | None = Field(
        default=None, description="The API key `lending mcp` acts with (its tools run as it)."
    )
    jwt_jwks: str | None = Field(
        default=None,
        description="Where the signing keys of bearer tokens (JWT) are: an http:// or https:// "
        "URL of a JWKS, or the path of a JWKS file. Unset: API keys only. Read at the first "
        "token, and again (at most every 60 s) when a token names a key it does not hold.",
    )
    jwt_issuer: str | None = Field(
        default=None, description="The `iss` every token must carry (required with JWT_JWKS)."
    )
    jwt_audience: str | None = Field(
        default=None,
        description="The `aud` every token must be meant for (required with JWT_JWKS).",
    )
    jwt_role_claim: str = Field(
        default="lending_role",
        min_length=1,
        description="The claim naming the caller's role (ADMIN, UNDERWRITER, SERVICER, AGENT, "
        "BORROWER).",
    )
    jwt_leeway_s: float = Field(
        default=30.0,
        ge=0,
        le=300,
        description="Seconds of clock difference allowed on `exp` and `nbf`.",
    )

    borrower_budget: str | None = Field(
        default=None,
        description="CAPACITY/RESTORE: each borrower's bucket of cost points (README, Budgets), "
        "instead of the BORROWER role's 500000/25000.",
    )

    @model_validator(mode="after")
    def _borrower_budget_is_a_budget(self) -> Settings:
        if self.borrower_budget:
            Budget.parse(self.borrower_budget)  # ValueError says what a budget is
        return self

    @model_validator(mode="after")
    def _demo_is_not_production(self) -> Settings:
        if self.lending_demo and self.production:
            raise ValueError("LENDING_DEMO cannot be combined with LENDING_ENV=production.")
        return self

    @model_validator(mode="after")
    def _production_metrics_need_a_token(self) -> Settings:
        if self.production and self.metrics and not self.metrics_token:
            raise ValueError(
                "LENDING_ENV=production serves /metrics only behind a token: set METRICS_TOKEN "
                "(16 characters or more), or METRICS=off."
            )
        return self

    @model_validator(mode="after")
    def _tokens_name_their_issuer_and_audience(self) -> Settings:
        if not self.jwt_jwks:
            return self
        if not (self.jwt_issuer and self.jwt_audience):
            raise ValueError(
                "JWT_JWKS needs JWT_ISSUER and JWT_AUDIENCE: tokens are checked against both."
            )
        if (
            not self.jwt_jwks.startswith(("https://", "http://"))
            and not Path(self.jwt_jwks).is_file()
        ):
            raise ValueError("JWT_JWKS is neither an http(s):// URL nor a JWKS file.")
        return self

    @model_validator(mode="after")
    def _cors_is_coherent(self) -> Settings:
        if self.cors_allow_credentials and "*" in self.cors_origin_list:
            raise ValueError(
                "CORS_ORIGINS=* cannot be combined with CORS_ALLOW_CREDENTIALS: list the origins."
            )
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        """The allowed origins, without blanks or trailing slashes."""
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def key_share(self) -> int:
        """The requests one key may have at work at once in a process."""
        return self.key_max_concurrency or max(1, self.db_pool_size // 2)

    @property
    def log_style(self) -> str:
        """The log format in effect."""
        return self.log_format or ("json" if self.production else "text")

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
