"""Loading a book into a migrated database with COPY, in one transaction, then vacuuming it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TypeVar

from bench.book import Book, api_key_rows, book_rows
from bench.columns import COLUMNS, TABLES, Row
from bench.progress import Progress
from bench.servicer import Servicer
from lending.repayment import installment_count

T = TypeVar("T")

# Loans serviced and copied together (instalments, payments, allocations).
BATCH_LOANS = 2_000
SERVICED = ("loans", "installments", "payments", "payment_allocations")

# Foreign keys, unique constraints and plain indexes of the filled tables, with the statements
# that drop and re-create them. Partial indexes stay: they are small or cheap to maintain, one
# of them guards the one-open-application rule, and their predicates would not deparse back to
# the same text (which the check after restoring relies on).
_SECONDARY = """
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname) AS remove,
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
              pg_get_constraintdef(c.oid)) AS restore,
       CASE c.contype WHEN 'f' THEN 0 ELSE 1 END AS stage
FROM pg_constraint c
WHERE c.conrelid = ANY($1::text[]::regclass[]) AND c.contype IN ('f', 'u')
UNION ALL
SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid), 2
FROM pg_index i
WHERE i.indrelid = ANY($1::text[]::regclass[]) AND i.indpred IS NULL
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                  WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
ORDER BY 3, 1
"""


async def _drop_secondary(connection: Any) -> list[str]:
    """Drop foreign keys, unique constraints and secondary indexes; return how to restore them."""
    found = await connection.fetch(_SECONDARY, list(TABLES))
    for row in found:
        await connection.execute(row["remove"])
    return [row["restore"] for row in reversed(found)]


async def _restore_secondary(connection: Any, statements: list[str], progress: Progress) -> None:
    """Re-create what ``_drop_secondary`` dropped, and check the catalog is as before."""
    progress.start()
    for n, statement in enumerate(statements):
        target = statement.split(" ON ")[0][:60]
        progress.show("indexes, keys", n, len(statements), target, unit="statements")
        await connection.execute(statement)
    progress.show("indexes, keys", len(statements), len(statements), force=True, unit="statements")
    progress.done()
    again = await connection.fetch(_SECONDARY, list(TABLES))
    if sorted(row["restore"] for row in again) != sorted(statements):
        raise AssertionError("indexes and constraints differ from before the load")


async def _copy(
    connection: Any, table: str, rows: Sequence[Row], progress: Progress, chunk: int = 50_000
) -> None:
    """COPY ``rows`` into ``table``, showing progress."""
    progress.start()
    for start in range(0, len(rows), chunk):
        await connection.copy_records_to_table(
            table, records=rows[start : start + chunk], columns=list(COLUMNS[table])
        )
        progress.show(table, min(start + chunk, len(rows)), len(rows))
    progress.show(table, len(rows), len(rows), force=True)
    progress.done()


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` in consecutive slices of ``size``."""
    return [items[start : start + size] for start in range(0, len(items), size)]


async def _service(
    connection: Any, book: Book, servicer: Servicer, counts: dict[str, int], progress: Progress
) -> None:
    """Service the loans batch by batch, copying each batch's rows in dependency order."""
    total = sum(
        installment_count(loan.term_months, loan.frequency)
        for loan in book.loans
        if loan.disbursed_on is not None
    )
    progress.start()
    loans_done = 0

    def show(force: bool = False) -> None:
        progress.show(
            "installments",
            counts["installments"],
            total,
            f"| loans {loans_done:,}/{len(book.loans):,}, payments {counts['payments']:,}, "
            f"allocations {counts['payment_allocations']:,}",
            force=force,
            rows=sum(counts[table] for table in SERVICED),
        )

    for index, loans in enumerate(chunks(book.loans, BATCH_LOANS)):
        batch = servicer.batch(index, loans)
        for table in SERVICED:
            rows = getattr(batch, table)
            if rows:
                await connection.copy_records_to_table(
                    table, records=rows, columns=list(COLUMNS[table])
                )
            counts[table] += len(rows)
        loans_done += len(loans)
        show()
    show(force=True)
    progress.done()


async def load(
    connection: Any, book: Book, seed: int, note: str, phases: dict[str, float]
) -> tuple[dict[str, int], Servicer]:
    """Copy the book and its servicing in one transaction; return the counts and the servicer.

    The foreign keys, unique constraints and (non-partial) secondary indexes of the filled
    tables are dropped first and re-created from their own catalog definitions before the
    commit, so a failure leaves every one of them in place. No trigger is touched (all of them
    fire on UPDATE or DELETE only). Identity sequences are moved past the loaded ids, and the
    database's comment becomes ``note``, which marks it filled.
    """
    progress = Progress()
    counts = dict.fromkeys(TABLES, 0)
    servicer = Servicer(seed)
    clock = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[phase] = phases.get(phase, 0.0) + now - clock
        clock = now

    async with connection.transaction():
        await connection.execute("SET LOCAL maintenance_work_mem = '512MB'")
        await connection.execute("SET LOCAL synchronous_commit = off")
        restore = await _drop_secondary(connection)
        for table, rows in book_rows(book).items():
            await _copy(connection, table, rows, progress)
            counts[table] = len(rows)
        lap("copy applicants, applications, decisions")
        await _service(connection, book, servicer, counts, progress)
        lap("service and copy loans, instalments, payments, allocations")
        await _copy(connection, "api_keys", api_key_rows(), progress)
        counts["api_keys"] = 1
        await _restore_secondary(connection, restore, progress)
        for table in TABLES:
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table} "
                "HAVING max(id) IS NOT NULL"
            )
        name = await connection.fetchval("SELECT current_database()")
        await connection.execute(f"COMMENT ON DATABASE {quoted(name)} IS '{note}'")
        lap("restore indexes and keys")
    lap("commit")
    return counts, servicer


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def vacuum(connection: Any) -> None:
    """VACUUM (ANALYZE) every filled table (visibility map and statistics for the benchmark)."""
    progress = Progress()
    for n, table in enumerate(TABLES):
        progress.show("vacuum, analyze", n, len(TABLES), table, unit="tables")
        await connection.execute(f"VACUUM (ANALYZE) {table}")
    progress.show("vacuum, analyze", len(TABLES), len(TABLES), force=True, unit="tables")
    progress.done()
