"""The `lending` command: serve, mcp, migrate, seed-demo, api-key, token, tools,
export-schema, schema-check.

The server, the schema and the agents' tools are imported by the commands that use them, not
at the top: building the schema and importing the app take seconds (`lending --help` 4.2 s
with them, 1.9 s without), which a key or an audit command should not pay.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession

from db.embedded import EmbeddedPostgres, ensure_database
from db.migrate import upgrade_to_head
from db.repositories import idempotency
from db.session import create_engine, create_sessionmaker
from graph.observability import logs
from graph.server import demo_tokens, schema_changes
from graph.server.settings import Settings, get_settings
from lending.access import ROLE_BUDGETS, STAFF_ROLES, Budget, Role
from lending.errors import DomainError
from lending.services import api_keys as key_service
from lending.services import audit as audit_service
from lending.services.demo import first_applicant_email, seed_demo

T = TypeVar("T")

log = logging.getLogger("lending")

DEMO_DATABASE = "lending"


def database_url(
    settings: Settings, *, direct: bool = False
) -> tuple[str, EmbeddedPostgres | None]:
    """DATABASE_URL when set; otherwise the embedded server (started here, kept running).

    ``direct``: for maintenance (migrations, keys, checks), past any transaction pooler, to
    DATABASE_LISTEN_URL when it is set.
    """
    if settings.database_url:
        return (
            settings.direct_url(settings.database_url) if direct else settings.database_url
        ), None
    server = EmbeddedPostgres(settings.pg_data_dir)
    server_url = server.start()
    return asyncio.run(ensure_database(server_url, DEMO_DATABASE)), server


def _budget(text: str) -> Budget:
    try:
        return Budget.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _ttl(text: str) -> int:
    seconds = int(text) if text.isdigit() else 0
    if not 0 < seconds <= demo_tokens.MAX_TTL_S:
        raise argparse.ArgumentTypeError(
            f"a number of seconds from 1 to {demo_tokens.MAX_TTL_S} (7 days)"
        )
    return seconds


def _email(text: str) -> str:
    email = text.strip()
    if not 3 <= len(email) <= 254 or "@" not in email:
        raise argparse.ArgumentTypeError("an email address (3 to 254 characters, with an @)")
    return email


def _in_session(url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one committed transaction on ``url``."""

    async def run() -> T:
        engine = create_engine(url, pool_size=1, max_overflow=0)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _seed(url: str) -> None:
    async def run() -> bool:
        engine = create_engine(url, pool_size=1, max_overflow=0)
        try:
            return await seed_demo(create_sessionmaker(engine))
        finally:
            await engine.dispose()

    if asyncio.run(run()):
        log.info("demo data loaded")
    else:
        log.info("demo data already present; left as is")
    keys = _in_session(url, key_service.ensure_demo_keys)
    lines = [f"  {role.value:<12} {key}" for role, key in keys.items()]
    sys.stderr.write(
        "\nDemo API keys (send as 'Authorization: Bearer <key>'; in GraphiQL, the Headers tab):\n"
        + "\n".join(lines)
        + '\n  e.g. {"Authorization": "Bearer '
        + keys[Role.ADMIN]
        + '"}\n\n'
    )


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    """Migrate, optionally seed the demo, and serve."""
    from graph.server.app import create_app, tune_interpreter

    _share_metrics(args.workers)  # before worker processes import graph.observability.metrics
    if args.demo and settings.production:
        raise SystemExit("--demo is refused with LENDING_ENV=production: it creates demo keys.")
    url, _server = database_url(settings)
    upgrade_to_head(settings.direct_url(url))
    signer = None
    if args.demo:
        _seed(settings.direct_url(url))
        settings = settings.model_copy(update={"lending_demo": True})
        os.environ["LENDING_DEMO"] = "true"  # for worker processes
        # Demo tokens are accepted unless JWT_JWKS names an issuer of its own.
        signer = demo_tokens.server_signer(settings)
        if signer is not None:
            settings = signer.accepted_by(settings)
            os.environ.update(signer.environment())
    host, port = args.host or settings.host, args.port or settings.port
    if signer is not None:
        _print_borrower_token(signer, settings, url, f"http://{host}:{port}/graphql")
    if settings.graphiql_enabled:
        log.info("GraphiQL: http://%s:%s/graphql", host, port)
    if settings.lending_demo:
        log.info("Dashboard: http://%s:%s/dashboard", host, port)
    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through SystemExit instead
    # lets the embedded PostgreSQL be stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level.lower(),
        # Logging is configured here (graph.observability.logs); in json, the request line
        # replaces uvicorn's.
        "log_config": None,
        "access_log": settings.access_log and settings.log_style == "text",
        "timeout_graceful_shutdown": settings.shutdown_timeout,
        "timeout_keep_alive": settings.keep_alive_timeout,
        # Events are small JSON messages: compressing each one costs more CPU than the bytes
        # it saves (1,000 subscribers, 100 events, two workers: 58-61 s of server CPU with
        # it, 42-50 s without).
        "ws_per_message_deflate": False,
    }
    if args.workers > 1:
        # Worker processes build their own app from the environment, and share their metrics
        # through files.
        os.environ["DATABASE_URL"] = url
        uvicorn.run(
            "graph.server.app:app_from_environment", factory=True, workers=args.workers, **options
        )
    else:
        app = create_app(settings, url)
        tune_interpreter()
        uvicorn.run(app, **options)


BORROWER_TOKEN_TTL_S = 24 * 3600  # the token `lending serve --demo` prints


def _print_borrower_token(
    signer: demo_tokens.DemoSigner, settings: Settings, url: str, endpoint: str
) -> None:
    """Print a token of the first applicant, as a borrower, and how to use it in GraphiQL."""
    email = _in_session(url, first_applicant_email)
    if email is None:
        return
    token = signer.token(email, demo_tokens.BORROWER, settings.jwt_role_claim, BORROWER_TOKEN_TTL_S)
    sys.stderr.write(
        f"Demo borrower token of {email} (valid 24 h; another: lending token issue --demo "
        f"--email …):\n  {token}\n  GraphiQL {endpoint}, Headers tab: "
        '{"Authorization": "Bearer <the token>"}\n\n'
    )


def _share_metrics(workers: int) -> None:
    """With several workers, metrics go through files in PROMETHEUS_MULTIPROC_DIR (a fresh
    temporary folder unless set), emptied of an earlier run's; see graph.observability.metrics.
    Worker processes import the metrics after this; the parent already has (only its own
    files are kept)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if workers <= 1 and not directory:
        return
    directory = directory or tempfile.mkdtemp(prefix="lending-metrics-")
    os.makedirs(directory, exist_ok=True)
    mine = f"_{os.getpid()}.db"  # this process's own, opened as graph.observability imported
    for name in os.listdir(directory):
        if name.endswith(".db") and not name.endswith(mine):
            os.remove(os.path.join(directory, name))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory


def cmd_mcp(settings: Settings, _: argparse.Namespace) -> None:
    """Serve the catalogue as MCP tools on stdin/stdout, acting with LENDING_API_KEY."""
    from graph.server.app import create_app

    if not settings.lending_api_key:
        raise SystemExit("Set LENDING_API_KEY to the API key the tools should act with.")
    # MCP owns stdout: until it is served, whatever anything prints goes to stderr (the
    # embedded PostgreSQL, started here, keeps it so).
    wire = os.dup(1)
    os.dup2(2, 1)
    try:
        url, _server = database_url(settings)
        upgrade_to_head(settings.direct_url(url))
        app = create_app(settings, url)
    finally:
        os.dup2(wire, 1)
        os.close(wire)
    if not asyncio.run(_serve_mcp(app, settings.lending_api_key)):
        raise SystemExit("LENDING_API_KEY is not a valid API key.")


async def _serve_mcp(app: Any, key: str) -> bool:
    """Serve MCP on stdio until the client hangs up; False when the key is refused."""
    async with app.router.lifespan_context(app):
        if await app.state.principals.authenticate(f"Bearer {key}") is None:
            return False
        await app.state.tools.run_stdio(key)
    return True


def cmd_tools(settings: Settings, args: argparse.Namespace) -> None:
    """Print the catalogue's tools with their JSON schemas."""
    from graph.agents.catalogue import catalogue
    from graph.agents.mcp_server import manifest
    from graph.schema import schema

    role = Role(args.role) if args.role else None
    tools = manifest(catalogue(schema._schema), args.format, role)
    sys.stdout.write(orjson.dumps(tools, option=orjson.OPT_INDENT_2).decode() + "\n")


def cmd_api_key(settings: Settings, args: argparse.Namespace) -> None:
    """Create, revoke or list API keys."""
    url, _server = database_url(settings, direct=True)
    upgrade_to_head(url)
    if args.action == "create":
        row, key = _in_session(
            url,
            lambda s: key_service.create_key(
                s, name=args.name, role=Role(args.role), budget=args.budget
            ),
        )
        sys.stdout.write(f"{key}\n")
        budget = args.budget or ROLE_BUDGETS[row.role]
        sys.stderr.write(
            f"Created {row.role.value} key {row.name!r} with a budget of {budget} "
            "(capacity/restore per second, in cost points); it is shown only once.\n"
        )
    elif args.action == "revoke":
        _in_session(url, lambda s: key_service.revoke_key(s, args.name))
        sys.stderr.write(f"Revoked {args.name!r}.\n")
    else:
        for row in _in_session(url, key_service.list_keys):
            state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
            demo = " (demo)" if row.demo else ""
            sys.stdout.write(
                f"{row.name:<24} {row.role.value:<12} {row.created_at:%Y-%m-%d %H:%M}  "
                f"{state}{demo}\n"
            )


def cmd_token_issue(settings: Settings, args: argparse.Namespace) -> None:
    """Print a token signed with the demo's key pair (demo mode only)."""
    if settings.production:
        raise SystemExit(
            "lending token issue is refused with LENDING_ENV=production: it signs demo tokens; "
            "real ones come from your identity provider."
        )
    if not (args.demo or settings.lending_demo):
        raise SystemExit(
            "lending token issue signs with the demo's own key, which only `lending serve "
            "--demo` accepts: add --demo (or set LENDING_DEMO=true) to say this is the demo."
        )
    signer = demo_tokens.DemoSigner.ensure(demo_tokens.folder(settings))
    try:
        token = signer.token(args.email, args.role, settings.jwt_role_claim, args.ttl, args.sub)
    except ValueError as error:
        raise SystemExit(f"error: the token would be refused: {error}") from None
    if settings.jwt_jwks:
        sys.stderr.write(
            f"note: JWT_JWKS is set, so the server accepts that issuer's tokens, not these "
            f"(signed for {signer.jwks}).\n"
        )
    sys.stdout.write(f"{token}\n")


def cmd_audit_verify(settings: Settings, _: argparse.Namespace) -> None:
    """Re-compute every audit chain; exit 1 naming the first broken link."""
    url, _server = database_url(settings, direct=True)
    result = _in_session(url, audit_service.verify)
    if result.broken is not None:
        sys.stderr.write(
            f"BROKEN: audit event {result.broken.id} of {result.broken.chain} does not match "
            "its hash chain (edited, deleted or inserted rows).\n"
        )
        raise SystemExit(1)
    sys.stdout.write(f"audit trail intact: {result.events} events in {result.chains} chains\n")


def cmd_purge_idempotency(settings: Settings, args: argparse.Namespace) -> None:
    """Delete idempotency keys older than the retention."""
    url, _server = database_url(settings, direct=True)
    removed = _in_session(
        url, lambda s: idempotency.purge(s, timedelta(hours=args.older_than_hours))
    )
    sys.stdout.write(f"purged {removed} idempotency keys older than {args.older_than_hours} h\n")


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> None:
    """Apply pending migrations."""
    url, _server = database_url(settings, direct=True)
    upgrade_to_head(url)


def cmd_seed_demo(settings: Settings, _: argparse.Namespace) -> None:
    """Load the demo data once."""
    url, _server = database_url(settings, direct=True)
    upgrade_to_head(url)
    _seed(url)


def cmd_export_schema(_: Settings, __: argparse.Namespace) -> None:
    """Print the GraphQL schema (SDL)."""
    from graph.schema import schema

    sys.stdout.write(schema.as_str() + "\n")


def cmd_schema_check(_: Settings, args: argparse.Namespace) -> None:
    """Fail on a breaking change from the released schema that CHANGELOG.md does not list."""
    root = Path(args.root)
    if args.ref:
        base, released = f"schema.graphql at {args.ref}", schema_changes.released_at(root, args.ref)
    else:
        path = schema_changes.last_release(root)
        base, released = str(path.relative_to(root)), path.read_text()
    changelog = root / "CHANGELOG.md"
    report = schema_changes.compare(
        released,
        (root / "schema.graphql").read_text(),
        changelog.read_text() if changelog.exists() else "",
        base,
    )
    sys.stdout.write("\n".join(report.lines()) + "\n")
    if report.refused:
        raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `lending` console script."""
    parser = argparse.ArgumentParser(prog="lending", description="Lending GraphQL service.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API (GraphiQL on /graphql)")
    serve.add_argument("--demo", action="store_true", help="load the demo data if absent")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.set_defaults(run=cmd_serve)
    commands.add_parser(
        "mcp", help="serve the MCP tools on stdio, as LENDING_API_KEY (see README: Agents)"
    ).set_defaults(run=cmd_mcp)
    tools = commands.add_parser("tools", help="the catalogue's operations as tools")
    export = tools.add_subparsers(dest="action", required=True).add_parser(
        "export", help="print the tools and their JSON schemas"
    )
    export.add_argument(
        "--format",
        choices=["mcp", "openai"],
        default="mcp",
        help="MCP tool definitions, or OpenAI function-calling tools (default mcp)",
    )
    export.add_argument("--role", choices=[r.value for r in Role], help="only this role's tools")
    tools.set_defaults(run=cmd_tools)
    keys = commands.add_parser("api-key", help="create, revoke or list API keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="create a key (printed once)")
    create.add_argument("--name", required=True, help="who uses it; recorded as the actor")
    create.add_argument("--role", required=True, choices=[r.value for r in STAFF_ROLES])
    create.add_argument(
        "--budget",
        type=_budget,
        help="its bucket of cost points, CAPACITY/RESTORE per second (default: its role's: "
        + ", ".join(f"{role.value} {budget}" for role, budget in ROLE_BUDGETS.items())
        + ")",
    )
    key_actions.add_parser("revoke", help="revoke a key").add_argument("name")
    key_actions.add_parser("list", help="list keys (never the keys themselves)")
    keys.set_defaults(run=cmd_api_key)
    token = commands.add_parser("token", help="demo bearer tokens (JWT), in demo mode only")
    issue = token.add_subparsers(dest="action", required=True).add_parser(
        "issue", help="print a token signed with the demo's key pair (.demo-tokens/)"
    )
    issue.add_argument("--email", required=True, type=_email, help="its email (verified)")
    issue.add_argument(
        "--role",
        default=demo_tokens.BORROWER,
        choices=demo_tokens.ROLES,
        help=f"its role claim (default {demo_tokens.BORROWER}: the applicant with that email)",
    )
    issue.add_argument(
        "--ttl",
        type=_ttl,
        default=demo_tokens.DEFAULT_TTL_S,
        help=f"seconds it is valid (default {demo_tokens.DEFAULT_TTL_S}, at most 7 days)",
    )
    issue.add_argument("--sub", help="its subject (default demo:<the email, lowercased>)")
    issue.add_argument(
        "--demo", action="store_true", help="say this is the demo (or set LENDING_DEMO=true)"
    )
    token.set_defaults(run=cmd_token_issue)
    audit = commands.add_parser("audit", help="check the audit trail")
    audit.add_subparsers(dest="action", required=True).add_parser(
        "verify", help="re-compute every hash chain"
    )
    audit.set_defaults(run=cmd_audit_verify)
    purge = commands.add_parser("purge-idempotency-keys", help="delete old idempotency keys")
    purge.add_argument("--older-than-hours", type=float, default=24.0, help="retention (24)")
    purge.set_defaults(run=cmd_purge_idempotency)
    commands.add_parser("migrate", help="apply migrations").set_defaults(run=cmd_migrate)
    commands.add_parser("seed-demo", help="load demo data once").set_defaults(run=cmd_seed_demo)
    commands.add_parser("export-schema", help="print schema.graphql").set_defaults(
        run=cmd_export_schema
    )
    check = commands.add_parser(
        "schema-check", help="refuse breaking changes from the released schema (CHANGELOG.md)"
    )
    check.add_argument("--ref", help="compare with schema.graphql at this git ref instead")
    check.add_argument("--root", default=".", help="the project's folder (default .)")
    check.set_defaults(run=cmd_schema_check)
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        _run(args, settings)
    except DomainError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        raise SystemExit(2) from None


def _run(args: argparse.Namespace, settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_style)
    args.run(settings, args)


if __name__ == "__main__":
    main()
