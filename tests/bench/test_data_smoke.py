"""The benchmark data generator at a tiny scale: consistent, reproducible, within every rule.

Fills ``lending_bench_smoke`` on the test server twice with the same seed (about 20 loans), then
checks the rows against the lending rules: schedules as ``build_schedule`` books them,
allocations as ``allocate`` derives them, the one-open-application rule, and the indexes and
constraints of a freshly migrated database.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

import pytest

from bench.book import build_book
from bench.bulk_copy import BATCH_LOANS, chunks
from bench.columns import COLUMNS, TABLES
from bench.distributions import REFERENCE_DATE
from bench.fill import generate, loans_for
from bench.servicer import Servicer
from db.embedded import admin_connection, ensure_database
from db.migrate import upgrade_to_head
from db.session import raw_connection
from lending.access import hash_api_key
from lending.allocation import InstallmentDue, PaymentIn, allocate
from lending.money import round_money
from lending.repayment import installment_count, schedule_terms
from lending.schedule import annuity_payment, build_schedule, calculations, periodic_rate
from lending.states import ApplicationStatus
from lending.terms import AmortizationMethod, DayCount, RepaymentFrequency

DATABASE = "lending_bench_smoke"
REFERENCE = "lending_bench_smoke_schema"
SCALE = 0.002
SEED = 7

# Every money column, summed for the reproducibility check.
AMOUNTS = """
SELECT (SELECT sum(amount_requested) FROM loan_applications)
     + (SELECT coalesce(sum(approved_amount), 0) FROM decisions)
     + (SELECT sum(principal) FROM loans)
     + (SELECT sum(principal_due + interest_due + balance_after) FROM installments)
     + (SELECT sum(amount) FROM payments)
     + (SELECT sum(principal + interest) FROM payment_allocations)
"""

# Constraints, indexes and triggers of the public schema, as the catalog describes them.
SCHEMA = """
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index
WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
UNION ALL
SELECT 'trigger ' || tgrelid::regclass || ' ' || pg_get_triggerdef(oid) FROM pg_trigger
WHERE NOT tgisinternal
"""


async def _drop(server_url: str, *names: str) -> None:
    connection = await admin_connection(server_url)
    try:
        for name in names:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _fingerprint(url: str) -> tuple[Decimal, dict[str, str]]:
    """The sum of all amounts, and a checksum of every filled table's rows in id order."""
    connection = await raw_connection(url)
    try:
        total = await connection.fetchval(AMOUNTS)
        checksums = {
            table: await connection.fetchval(
                f"SELECT md5(string_agg(t::text, E'\\n' ORDER BY t.id)) FROM {table} t"
            )
            for table in TABLES
        }
    finally:
        await connection.close()
    return total, checksums


@dataclass
class Runs:
    url: str
    counts: list[dict[str, int]]
    fingerprints: list[tuple[Decimal, dict[str, str]]]
    schema: set[str]
    reference_schema: set[str]


async def _schema(url: str) -> set[str]:
    connection = await raw_connection(url)
    try:
        return {row[0] for row in await connection.fetch(SCHEMA)}
    finally:
        await connection.close()


async def _generate_twice(server_url: str) -> Runs:
    url = await ensure_database(server_url, DATABASE)
    counts, fingerprints = [], []
    for _ in range(2):
        counts.append(await generate(url, SCALE, seed=SEED, fresh=True))
        fingerprints.append(await _fingerprint(url))
    reference = await ensure_database(server_url, REFERENCE)
    await asyncio.to_thread(upgrade_to_head, reference)
    return Runs(url, counts, fingerprints, await _schema(url), await _schema(reference))


@pytest.fixture(scope="module")
def runs(server_url: str) -> Iterator[Runs]:
    """The smoke database, generated twice with the same seed (dropped afterwards)."""
    asyncio.run(_drop(server_url, DATABASE, REFERENCE))
    yield asyncio.run(_generate_twice(server_url))
    asyncio.run(_drop(server_url, DATABASE, REFERENCE))


async def _fetch(url: str, query: str, *args: Any) -> list[Any]:
    connection = await raw_connection(url)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


def test_every_table_is_filled(runs: Runs) -> None:
    counts = runs.counts[-1]
    assert {table: counts[table] > 0 for table in TABLES} == dict.fromkeys(TABLES, True)
    assert counts["loans"] == loans_for(SCALE)
    assert counts["audit_events"] == counts["idempotency_keys"] == 0
    keys = asyncio.run(_fetch(runs.url, "SELECT name, role, key_hash, revoked_at FROM api_keys"))
    assert [tuple(k) for k in keys] == [("bench", "ADMIN", hash_api_key("lnd_bench_admin"), None)]


def test_same_seed_gives_the_same_rows(runs: Runs) -> None:
    first, second = runs.counts
    assert first == second
    assert runs.fingerprints[0][0] == runs.fingerprints[1][0] > 0
    assert runs.fingerprints[0][1] == runs.fingerprints[1][1]


def test_indexes_constraints_and_triggers_are_as_migrated(runs: Runs) -> None:
    assert runs.schema == runs.reference_schema
    sequences = asyncio.run(
        _fetch(
            runs.url,
            " UNION ALL ".join(
                f"SELECT '{t}', (SELECT max(id) FROM {t}), "
                f"pg_sequence_last_value(pg_get_serial_sequence('{t}', 'id'))"
                for t in TABLES
            ),
        )
    )
    assert [(t, high) for t, high, _ in sequences] == [(t, last) for t, _, last in sequences]


def test_applications_and_decisions(runs: Runs) -> None:
    apps = asyncio.run(
        _fetch(
            runs.url,
            "SELECT a.id, a.applicant_id, a.status, a.version, a.submitted_at, a.updated_at, "
            "l.id AS loan_id, "
            "array(SELECT d.outcome FROM decisions d WHERE d.application_id = a.id "
            "      ORDER BY d.decided_at, d.id) AS outcomes "
            "FROM loan_applications a LEFT JOIN loans l ON l.application_id = a.id",
        )
    )
    assert {a["status"] for a in apps} == {s.value for s in ApplicationStatus}
    open_statuses = {"SUBMITTED", "IN_REVIEW"}
    by_applicant: dict[int, list[Any]] = defaultdict(list)
    for app in apps:
        by_applicant[app["applicant_id"]].append(app)
        outcomes = app["outcomes"]
        assert (app["loan_id"] is not None) == (app["status"] == "APPROVED")
        final = {"APPROVED": "APPROVED", "REJECTED": "REJECTED"}.get(app["status"])
        if final is not None:
            assert outcomes[-1] == final
            outcomes = outcomes[:-1]
        # Referrals only before the final decision; none at all while SUBMITTED.
        assert all(outcome == "REFERRED" for outcome in outcomes)
        if app["status"] == "SUBMITTED":
            assert outcomes == []
        if app["status"] == "IN_REVIEW":
            assert outcomes == ["REFERRED"]
        assert app["version"] == 1 + len(app["outcomes"]) + (app["status"] == "WITHDRAWN")
        assert app["submitted_at"] <= app["updated_at"]
    for mine in by_applicant.values():
        # At most one open application, and only as the applicant's latest.
        mine.sort(key=lambda a: a["submitted_at"])
        assert all(a["status"] not in open_statuses for a in mine[:-1])


def test_schedules_are_booked_as_build_schedule_books_them(runs: Runs) -> None:
    loans = asyncio.run(_fetch(runs.url, "SELECT * FROM loans ORDER BY id"))
    rows = asyncio.run(_fetch(runs.url, "SELECT * FROM installments ORDER BY loan_id, number"))
    by_loan: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        by_loan[row["loan_id"]].append(row)
    assert Counter(loan["status"] for loan in loans).keys() >= {"ACTIVE"}
    for loan in loans:
        mine = by_loan[loan["id"]]
        if loan["disbursed_on"] is None:
            assert loan["status"] == "APPROVED"
            assert mine == []
            continue
        frequency = RepaymentFrequency(loan["frequency"])
        assert len(mine) == installment_count(loan["term_months"], frequency)
        assert sum(r["principal_due"] for r in mine) == loan["principal"]
        assert mine[-1]["balance_after"] == 0
        assert mine[-1]["due_date"] == loan["maturity_date"]
        schedule = build_schedule(
            schedule_terms(
                principal=loan["principal"],
                annual_rate=loan["annual_interest_rate"],
                term_months=loan["term_months"],
                method=AmortizationMethod(loan["amortization"]),
                frequency=frequency,
                day_count=DayCount(loan["day_count"]),
                currency=loan["currency"],
                disbursed_on=loan["disbursed_on"],
                first_due_date=None,
            )
        )
        assert [
            (r["number"], r["due_date"], r["principal_due"], r["interest_due"], r["balance_after"])
            for r in mine
        ] == [
            (s.number, s.due_date, s.principal, s.interest, s.balance_after)
            for s in schedule.installments
        ]


class Booked(NamedTuple):
    number: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    balance_after: Decimal


def rebuilt(loan: Any, booked: list[Booked]) -> list[Booked]:
    """A loan's instalments made again from what Installment.calculation shows of them (the
    opening balance, the period, the interest before and after rounding) with the
    amortization's principal rule."""
    frequency, currency = RepaymentFrequency(loan["frequency"]), loan["currency"]
    method = AmortizationMethod(loan["amortization"])
    shown = calculations(
        booked,
        loan["principal"],
        loan["annual_interest_rate"],
        frequency,
        DayCount(loan["day_count"]),
        currency,
        loan["disbursed_on"],
    )
    count = len(shown)
    if method is AmortizationMethod.ANNUITY:
        rate = periodic_rate(loan["annual_interest_rate"], frequency)
        level = annuity_payment(loan["principal"], rate, count, currency)
    else:
        level = round_money(loan["principal"] / count, currency)
    out, opening = [], loan["principal"]
    for c in shown:
        assert c.opening_balance == opening
        interest = c.interest.rounded
        assert interest == round_money(c.interest.exact, currency)
        if c.number == count:
            principal = opening
        elif method is AmortizationMethod.ANNUITY:
            principal = min(max(level - interest, Decimal(0)), opening)
        else:
            principal = min(level, opening)
        opening -= principal
        out.append(Booked(c.number, c.period_end, principal, interest, opening))
    return out


def test_every_stored_schedule_is_rebuilt_from_its_calculation_rows(runs: Runs) -> None:
    """Cent for cent, from the rows as the database holds them."""
    loans = asyncio.run(_fetch(runs.url, "SELECT * FROM loans WHERE disbursed_on IS NOT NULL"))
    rows = asyncio.run(_fetch(runs.url, "SELECT * FROM installments ORDER BY loan_id, number"))
    by_loan: dict[int, list[Booked]] = defaultdict(list)
    for row in rows:
        by_loan[row["loan_id"]].append(Booked(*(row[f] for f in Booked._fields)))
    assert loans
    for loan in loans:
        assert rebuilt(loan, by_loan[loan["id"]]) == by_loan[loan["id"]]


def test_every_schedule_of_a_larger_book_is_rebuilt_from_its_calculation_rows() -> None:
    """Without the database: every schedule of a 1,500-loan book, of every amortization,
    frequency and day count the book draws."""
    book = build_book(SEED, 1_500)
    servicer = Servicer(SEED)
    kinds: Counter[tuple[str, str, str]] = Counter()
    for index, loans in enumerate(chunks(book.loans, BATCH_LOANS)):
        batch = servicer.batch(index, loans)
        by_loan: dict[int, list[Booked]] = defaultdict(list)
        for values in batch.installments:
            row = dict(zip(COLUMNS["installments"], values, strict=True))
            by_loan[row["loan_id"]].append(Booked(*(row[f] for f in Booked._fields)))
        for values in batch.loans:
            loan = dict(zip(COLUMNS["loans"], values, strict=True))
            if loan["disbursed_on"] is None:
                continue
            assert rebuilt(loan, by_loan[loan["id"]]) == by_loan[loan["id"]]
            kinds[(loan["amortization"], loan["frequency"], loan["day_count"])] += 1
    print(f"{sum(kinds.values())} schedules rebuilt: {dict(kinds)}")
    assert {a for a, _, _ in kinds} == {m.value for m in AmortizationMethod}
    assert {d for _, _, d in kinds} == {d.value for d in DayCount}


def test_payments_and_allocations_follow_allocate(runs: Runs) -> None:
    loans = {r["id"]: r for r in asyncio.run(_fetch(runs.url, "SELECT * FROM loans"))}
    installments = asyncio.run(_fetch(runs.url, "SELECT * FROM installments ORDER BY id"))
    payments = asyncio.run(_fetch(runs.url, "SELECT * FROM payments ORDER BY id"))
    allocations = asyncio.run(_fetch(runs.url, "SELECT * FROM payment_allocations ORDER BY id"))
    allocated_per_payment: dict[int, Decimal] = defaultdict(Decimal)
    allocated_per_installment: dict[int, Decimal] = defaultdict(Decimal)
    for a in allocations:
        allocated_per_payment[a["payment_id"]] += a["principal"] + a["interest"]
        allocated_per_installment[a["installment_id"]] += a["principal"] + a["interest"]
    for p in payments:
        loan = loans[p["loan_id"]]
        assert loan["disbursed_on"] <= p["received_on"] <= REFERENCE_DATE
        if p["reversed_at"] is None:
            assert allocated_per_payment[p["id"]] == p["amount"]
        else:
            assert p["id"] not in allocated_per_payment
    for i in installments:
        assert allocated_per_installment[i["id"]] <= i["principal_due"] + i["interest_due"]

    # Replaying every loan's live payments through allocate gives exactly the stored rows.
    per_loan: dict[int, tuple[list[Any], list[Any], list[Any]]] = defaultdict(lambda: ([], [], []))
    for i in installments:
        per_loan[i["loan_id"]][0].append(i)
    for p in payments:
        if p["reversed_at"] is None:
            per_loan[p["loan_id"]][1].append(p)
    for a in allocations:
        per_loan[a["loan_id"]][2].append(a)
    for loan_id, (mine, live, stored) in per_loan.items():
        number = {i["id"]: i["number"] for i in mine}
        result = allocate(
            [
                InstallmentDue(i["number"], i["due_date"], i["principal_due"], i["interest_due"])
                for i in mine
            ],
            [PaymentIn(p["id"], p["amount"], p["received_on"], p["recorded_at"]) for p in live],
        )
        assert result.unallocated == 0
        assert [
            (a["payment_id"], number[a["installment_id"]], a["principal"], a["interest"])
            for a in stored
        ] == [(a.payment_key, a.installment_number, a.principal, a.interest)
              for a in result.allocations]  # fmt: skip
        paid_off = all(b.outstanding == 0 for b in result.balances)
        assert (loans[loan_id]["status"] == "PAID_OFF") == paid_off
        # settled_on as the service keeps it with the allocations
        assert [i["settled_on"] for i in mine] == [b.settled_on for b in result.balances]


def test_every_delinquency_bucket_and_status_appears_at_a_larger_scale() -> None:
    """Without the database: the servicing mix of 1,500 loans covers every case."""
    book = build_book(SEED, 1_500)
    servicer = Servicer(SEED)
    for index, loans in enumerate(chunks(book.loans, BATCH_LOANS)):
        servicer.batch(index, loans)
    mix = servicer.mix
    for bucket in ("CURRENT", "DPD_1_30", "DPD_31_60", "DPD_61_90", "DPD_91_PLUS"):
        assert mix.get(f"bucket:{bucket}", 0) > 0, bucket
    for status in ("APPROVED", "ACTIVE", "PAID_OFF"):
        assert mix.get(f"loan:{status}", 0) > 0, status
    assert servicer.allocated_directly > 0
    assert servicer.allocated_by_replay > 0
