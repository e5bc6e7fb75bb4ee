"""Filling a benchmark database: created and migrated, kept when already filled, else loaded."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import make_url

from bench.book import BENCH_KEY_NAME, build_book
from bench.bulk_copy import load, quoted, vacuum
from bench.columns import EMPTY_TABLES, TABLES
from bench.distributions import REFERENCE_DATE
from db.embedded import admin_connection, ensure_database, with_database
from db.migrate import upgrade_to_head
from db.session import raw_connection
from lending.access import UNLIMITED_BUDGET

LOANS_PER_SCALE = 10_000
# Recorded as the database's comment once a load commits; bump when the generated rows change.
GENERATOR_VERSION = 4
MARKER_PREFIX = "bench.data "


def database_name(scale: float) -> str:
    """The embedded database of a scale: ``lending_bench_0_1`` for 0.1."""
    return "lending_bench_" + f"{scale:g}".replace(".", "_").replace("-", "_")


def loans_for(scale: float) -> int:
    """Loans in a book of ``scale`` (10,000 per unit, at least one)."""
    return max(1, round(LOANS_PER_SCALE * scale))


def marker(scale: float, seed: int) -> str:
    """What a committed load records as the database's comment."""
    return f"{MARKER_PREFIX}v{GENERATOR_VERSION} scale={scale:g} seed={seed}"


class DatabaseNotEmpty(RuntimeError):
    """The database holds rows that are not the book asked for."""


@dataclass
class Report:
    """What a run produced, for the summary."""

    counts: dict[str, int]
    seconds: float
    mix: dict[str, int] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    reused: bool = False


async def _existing_counts(connection: Any) -> dict[str, int]:
    return {
        table: int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
        for table in (*TABLES, *EMPTY_TABLES)
    }


async def _drop_database(server_url: str, name: str) -> None:
    connection = await admin_connection(server_url)
    try:
        await connection.execute(f"DROP DATABASE IF EXISTS {quoted(name)} WITH (FORCE)")
    finally:
        await connection.close()


async def run(url: str, scale: float, seed: int = 7, fresh: bool = False) -> Report:
    """Fill the database at ``url`` (created if missing, recreated when ``fresh``)."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    started = time.perf_counter()
    name = make_url(url).database
    if not name:
        raise ValueError("the database URL must name a database")
    server_url = with_database(url, "postgres")
    if fresh:
        await _drop_database(server_url, name)
    await ensure_database(server_url, name)
    await asyncio.to_thread(upgrade_to_head, url)
    note = marker(scale, seed)
    phases = {"create and migrate the database": time.perf_counter() - started}
    connection = await raw_connection(url)
    try:
        filled = [t for t in TABLES if await connection.fetchval(f"SELECT EXISTS (TABLE {t})")]
        if filled:
            comment = await connection.fetchval(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname = current_database()"
            )
            if comment == note:
                # A book filled before keys had budgets holds the load generator's key with its
                # role's budget, which throttles it: give it the unlimited one it is made with.
                await connection.execute(
                    "UPDATE api_keys SET budget_capacity = $1, budget_restore = $1 WHERE name = $2",
                    UNLIMITED_BUDGET.capacity,
                    BENCH_KEY_NAME,
                )
                counts = await _existing_counts(connection)
                return Report(counts, time.perf_counter() - started, reused=True)
            if comment is not None and comment.startswith(MARKER_PREFIX):
                # a book of an older generator (or another seed or scale): made again
                await connection.close()
                return await run(url, scale, seed, fresh=True)
            raise DatabaseNotEmpty(
                f"database {name} already holds rows ({', '.join(filled)}) that are not "
                f"{note!r}; use --fresh to recreate it"
            )
        clock = time.perf_counter()
        book = build_book(seed, loans_for(scale))
        phases["draw applicants, applications, decisions"] = time.perf_counter() - clock
        counts, servicer = await load(connection, book, seed, note, phases)
        clock = time.perf_counter()
        await vacuum(connection)
        phases["vacuum and analyze"] = time.perf_counter() - clock
    finally:
        await connection.close()
    for table in EMPTY_TABLES:
        counts[table] = 0
    mix = dict(servicer.mix)
    for app in book.applications:
        key = f"application:{app.status.value}"
        mix[key] = mix.get(key, 0) + 1
    mix["allocation:direct"] = servicer.allocated_directly
    mix["allocation:replayed"] = servicer.allocated_by_replay
    return Report(counts, time.perf_counter() - started, mix, phases)


async def generate(url: str, scale: float, seed: int = 7, fresh: bool = False) -> dict[str, int]:
    """Fill the database at ``url`` with a book of ``scale``; return the row count per table."""
    return (await run(url, scale, seed, fresh)).counts


def summary(report: Report) -> str:
    """Row counts per table, the generated mix, the time of each phase and the elapsed time."""
    lines = [f"{'table':<22}{'rows':>14}"]
    lines += [f"{table:<22}{count:>14,}" for table, count in report.counts.items()]
    lines.append(f"{'total':<22}{sum(report.counts.values()):>14,}")
    groups: dict[str, list[str]] = {}
    for key, value in sorted(report.mix.items()):
        group, _, name = key.partition(":")
        groups.setdefault(group, []).append(f"{name or group} {value:,}")
    titles = {
        "application": "applications",
        "loan": "loans",
        "bucket": "not paid off, by delinquency on " + REFERENCE_DATE.isoformat(),
        "behaviour": "repayment behaviour",
        "allocation": "loans allocated",
        "payment": "payments",
    }
    for group, items in groups.items():
        lines.append(f"{titles.get(group, group)}: {', '.join(items)}")
    for phase, seconds in report.phases.items():
        lines.append(f"{seconds:8.1f} s  {phase}")
    state = "already filled, kept as it is" if report.reused else "generated"
    lines.append(f"{state} in {report.seconds:.1f} s")
    return "\n".join(lines)
