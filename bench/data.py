"""Benchmark data: a realistic, reproducible lending book of any size, loaded with COPY.

    python -m bench.data --scale S [--database-url URL] [--seed 7] [--fresh]

Scale 1 is 10,000 loans (with about 13,100 applicants, 14,200 applications, 15,300 decisions,
335,000 instalments, 165,000 payments and 178,000 allocations); every count grows linearly with
the scale. Without ``--database-url`` the
embedded server in ``.pgdata-bench`` is used, with a database ``lending_bench_<scale>`` (dots
replaced by underscores); ``--fresh`` drops and recreates the database first. Without it, a
database already filled for the same scale and seed is kept as it is, and any other non-empty
one is refused. The last line on stdout is the database URL (the embedded server is stopped on
exit; ``EmbeddedPostgres(".pgdata-bench").start()`` brings it back at the same URL).

Everything is derived from ``random.Random`` seeded with the seed, and every date from the
reference date of ``bench.distributions``, so the same scale and seed give the same rows on any
day. The book is drawn by ``bench.book``, serviced by ``bench.servicer``, copied in by
``bench.bulk_copy``; ``bench.fill`` (``run``, ``generate``) decides what a database needs.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

from bench.fill import DatabaseNotEmpty, database_name, generate, run, summary
from db.embedded import EmbeddedPostgres, with_database

# Kept importable from here: callers fill databases with ``bench.data.generate``.
__all__ = ["generate", "main", "run"]

ROOT = Path(__file__).resolve().parent.parent
PGDATA = ROOT / ".pgdata-bench"


async def _main(args: argparse.Namespace) -> str:
    if args.database_url:
        report = await run(args.database_url, args.scale, args.seed, args.fresh)
        url = args.database_url
    else:
        server = EmbeddedPostgres(PGDATA)
        try:
            server_url = await asyncio.to_thread(server.start)
            url = with_database(server_url, database_name(args.scale))
            report = await run(url, args.scale, args.seed, args.fresh)
        finally:
            server.stop()
    print(summary(report))
    return str(url)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.data", description="Fill a database with benchmark data."
    )
    parser.add_argument("--scale", type=float, required=True, help="1 = 10,000 loans")
    parser.add_argument("--database-url", help="fill this database instead of the embedded one")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    args = parser.parse_args(argv)
    try:
        url = asyncio.run(_main(args))
    except DatabaseNotEmpty as e:
        parser.exit(2, f"{parser.prog}: {e}\n")
    print(url, flush=True)


if __name__ == "__main__":
    main()
