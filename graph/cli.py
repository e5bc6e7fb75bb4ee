"""The `lending` command: serve, migrate, seed-demo, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from db.embedded import EmbeddedPostgres, ensure_database
from db.migrate import upgrade_to_head
from graph.settings import Settings, get_settings

log = logging.getLogger("lending")

DEMO_DATABASE = "lending"


def database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """DATABASE_URL when set; otherwise the embedded server (started here, kept running)."""
    if settings.database_url:
        return settings.database_url, None
    server = EmbeddedPostgres(settings.pg_data_dir)
    server_url = server.start()
    return asyncio.run(ensure_database(server_url, DEMO_DATABASE)), server


def _seed(url: str) -> None:
    from db.session import create_engine, create_sessionmaker
    from lending.demo import seed_demo

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


def cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    """Migrate, optionally seed the demo, and serve."""
    import uvicorn

    from graph.app import create_app

    url, _server = database_url(settings)
    upgrade_to_head(url)
    if args.demo:
        _seed(url)
    host, port = args.host or settings.host, args.port or settings.port
    if settings.graphiql_enabled:
        log.info("GraphiQL: http://%s:%s/graphql", host, port)
    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through SystemExit instead
    # lets the embedded PostgreSQL be stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.run(
        create_app(settings, url), host=host, port=port, log_level=settings.log_level.lower()
    )


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> None:
    """Apply pending migrations."""
    url, _server = database_url(settings)
    upgrade_to_head(url)


def cmd_seed_demo(settings: Settings, _: argparse.Namespace) -> None:
    """Load the demo data once."""
    url, _server = database_url(settings)
    upgrade_to_head(url)
    _seed(url)


def cmd_export_schema(_: Settings, __: argparse.Namespace) -> None:
    """Print the GraphQL schema (SDL)."""
    from graph.schema import schema

    sys.stdout.write(schema.as_str() + "\n")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `lending` console script."""
    parser = argparse.ArgumentParser(prog="lending", description="Lending GraphQL service.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API (GraphiQL on /graphql)")
    serve.add_argument("--demo", action="store_true", help="load the demo data if absent")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8000)")
    serve.set_defaults(run=cmd_serve)
    commands.add_parser("migrate", help="apply migrations").set_defaults(run=cmd_migrate)
    commands.add_parser("seed-demo", help="load demo data once").set_defaults(run=cmd_seed_demo)
    commands.add_parser("export-schema", help="print schema.graphql").set_defaults(
        run=cmd_export_schema
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    args.run(settings, args)


if __name__ == "__main__":
    main()
