"""The write ceiling writes what the service writes: W1's sequence through both, row for row.

The ceiling's app runs in-process (httpx's ASGI transport) against the test database, driven
by bench.writes' own sequence; the same sequence then runs through the service, and the rows
of the two are compared with what differs by nature (keys, references, times, names, the
actor) left out. Replays with the same keys write nothing and answer the same.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import writes
from bench.book import BENCH_KEY_NAME
from bench.ceiling import _connect_url
from bench.write_ceiling import ACTOR, CHANNEL, WriteCeilingApp
from db.models import Loan
from db.repositories.events import CHANNEL as SERVICE_CHANNEL
from db.session import create_sessionmaker
from lending.access import Role
from lending.allocation import InstallmentDue, PaymentIn, allocate
from lending.repayment import loan_schedule
from lending.services.audit import verify
from tests.dbfixtures import clean_tables
from tests.factories import create_product

__all__ = ["clean_tables"]  # the app and its keys are the session's (tests/conftest.py)

TABLES = (
    "applicants",
    "loan_applications",
    "decisions",
    "loans",
    "installments",
    "payments",
    "payment_allocations",
    "idempotency_keys",
    "audit_events",
    "audit_chain_heads",
)
# What differs between two runs of the same sequence by nature, left out of the comparison.
VOLATILE = {
    "id",
    "applicant_id",
    "application_id",
    "loan_id",
    "payment_id",
    "installment_id",
    "product_id",
    "reference",
    "full_name",
    "email",
    "actor",
    "decided_by",
    "recorded_by",
    "key",
    "idempotency_key",
    "request_id",
    "entity_id",
    "chain",
    "hash",
    "previous_hash",
    "last_hash",
    "result",
    "created_at",
    "submitted_at",
    "updated_at",
    "decided_at",
    "approved_at",
    "recorded_at",
    "at",
    "applicationId",
    "loanId",
    "entityId",
    "request_hash",  # the ceiling fingerprints the input as sent (graph: as coerced)
}


def _stable(value: Any) -> Any:
    """``value`` with what differs by nature marked only as present or absent."""
    if isinstance(value, dict):
        return {
            k: (None if v is None else "…") if k in VOLATILE else _stable(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


@pytest.fixture
async def ceiling(database_url: str) -> AsyncIterator[WriteCeilingApp]:
    app = WriteCeilingApp(database_url, pool_size=3)
    yield app
    await app.close()


Exchange = tuple[dict[str, Any], dict[str, Any]]  # a request's body and its answer


def _client(
    transport: httpx.AsyncBaseTransport, exchanges: list[Exchange], key: str | None = None
) -> httpx.AsyncClient:
    """A client recording every request body with the answer it got."""

    async def answered(response: httpx.Response) -> None:
        await response.aread()
        exchanges.append((json.loads(response.request.content), response.json()))

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://ceiling",
        headers=headers,
        event_hooks={"response": [answered]},
    )


async def _w1(client: httpx.AsyncClient) -> None:
    latencies: list[float] = []
    await writes.sequence(client, latencies)
    assert len(latencies) == 4


# The rows of one sequence: of application :a, its chain :chain and its idempotency :keys.
_LOAN = "(SELECT id FROM loans WHERE application_id = :a)"
WHERE = {
    "applicants": "id = (SELECT applicant_id FROM loan_applications WHERE id = :a) ORDER BY id",
    "loan_applications": "id = :a ORDER BY id",
    "decisions": "application_id = :a ORDER BY id",
    "loans": "application_id = :a ORDER BY id",
    "installments": f"loan_id = {_LOAN} ORDER BY id",
    "payments": f"loan_id = {_LOAN} ORDER BY id",
    "payment_allocations": f"loan_id = {_LOAN} ORDER BY id",
    "idempotency_keys": "key = ANY(:keys) ORDER BY created_at, key",
    "audit_events": "chain = :chain ORDER BY id",
    "audit_chain_heads": "chain = :chain",
}


async def _rows(
    engine: AsyncEngine, application_id: int, exchanges: list[Exchange]
) -> dict[str, list[dict[str, Any]]]:
    """Every row a W1 sequence (on ``application_id``) wrote, table by table."""
    keys = [body["variables"]["input"]["idempotencyKey"] for body, _ in exchanges]
    values = {"a": application_id, "chain": f"application:{application_id}", "keys": keys}
    found = {}
    async with engine.connect() as connection:
        for table in TABLES:
            statement = text(f"SELECT * FROM {table} WHERE {WHERE[table]}")
            used = {k: v for k, v in values.items() if f":{k}" in WHERE[table]}
            result = await connection.execute(statement, used)
            found[table] = [dict(r._mapping) for r in result]
    return found


async def _counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        return {
            table: int(await connection.scalar(text(f"SELECT count(*) FROM {table}")))
            for table in TABLES
        }


def _comparable(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The rows as JSON-like values with what differs by nature marked only."""
    return _stable(json.loads(json.dumps(rows, default=str)))


class Announcements:
    """The loan events announced on the service's channel while listening."""

    def __init__(self) -> None:
        self.heard: list[dict[str, Any]] = []

    def __call__(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.heard.append(json.loads(payload))


@pytest.fixture
async def announcements(database_url: str) -> AsyncIterator[Announcements]:
    heard = Announcements()
    connection = await asyncpg.connect(_connect_url(database_url))
    await connection.add_listener(CHANNEL, heard)
    yield heard
    await connection.close()


async def _settle(heard: Announcements, count: int) -> list[dict[str, Any]]:
    for _ in range(100):
        if len(heard.heard) >= count:
            break
        await asyncio.sleep(0.02)
    return list(heard.heard)


def test_the_ceiling_acts_and_announces_as_the_bench_key() -> None:
    assert ACTOR == BENCH_KEY_NAME
    assert CHANNEL == SERVICE_CHANNEL


async def test_w1_through_the_ceiling_writes_what_the_service_writes(
    engine: AsyncEngine,
    ceiling: WriteCeilingApp,
    app: FastAPI,
    api_keys: dict[Role, str],
    announcements: Announcements,
) -> None:
    await create_product(engine)

    # when W1's sequence runs through the ceiling, then through the service
    mine: list[Exchange] = []
    async with _client(httpx.ASGITransport(app=ceiling), mine) as client:
        await _w1(client)
    heard_mine = await _settle(announcements, 4)
    announcements.heard.clear()
    theirs: list[Exchange] = []
    async with _client(httpx.ASGITransport(app=app), theirs, api_keys[Role.ADMIN]) as client:
        await _w1(client)
    heard_theirs = await _settle(announcements, 4)

    # then the ceiling answered what the driver reads, as the service did
    for (_, answer), (_, expected) in zip(mine, theirs, strict=True):
        assert answer.keys() == {"data"}
        (root, payload), (root_expected, payload_expected) = (
            next(iter(answer["data"].items())),
            next(iter(expected["data"].items())),
        )
        assert root == root_expected
        assert _stable(payload).keys() == payload_expected.keys()
        assert payload["userErrors"] == payload_expected["userErrors"] == []
    assert (
        mine[2][1]["data"]["disburseLoan"]["loan"]["payoffAmount"]
        == (theirs[2][1]["data"]["disburseLoan"]["loan"]["payoffAmount"])
    )

    # and wrote the same rows, but for keys, references, times, names and the actor
    async with engine.connect() as connection:
        first, second = (
            await connection.scalars(text("SELECT id FROM loan_applications ORDER BY id"))
        ).all()
    rows = await _rows(engine, first, mine)
    expected_rows = await _rows(engine, second, theirs)
    assert _comparable(rows) == _comparable(expected_rows)

    # and announced the same events
    assert _stable(heard_mine) == _stable(heard_theirs)
    assert [e["type"] for e in heard_mine] == [
        "SUBMITTED",
        "DECIDED",
        "DISBURSED",
        "PAYMENT_RECORDED",
    ]

    # and the rows are what the rules make of the sequence
    assert len(rows["applicants"]) == 1
    (application,) = rows["loan_applications"]
    assert application["status"] == "APPROVED"
    assert [d["outcome"] for d in rows["decisions"]] == ["APPROVED"]
    assert rows["decisions"][0]["decided_by"] == ACTOR
    (loan,) = rows["loans"]
    assert loan["status"] == "ACTIVE"
    async with create_sessionmaker(engine)() as session:
        terms = await session.get(Loan, loan["id"])
    assert terms is not None
    schedule = loan_schedule(terms, loan["disbursed_on"], None)
    assert [
        (i["number"], i["due_date"], i["principal_due"], i["interest_due"], i["balance_after"])
        for i in rows["installments"]
    ] == [
        (r.number, r.due_date, r.principal, r.interest, r.balance_after)
        for r in schedule.installments
    ]
    assert loan["maturity_date"] == schedule.maturity_date
    (payment,) = rows["payments"]
    assert payment["amount"] == Decimal("500.00")
    allocations = rows["payment_allocations"]
    assert sum(a["principal"] + a["interest"] for a in allocations) == payment["amount"]
    async with create_sessionmaker(engine)() as session:
        checked = await verify(session)
    assert checked.broken is None
    assert checked.events == 2 * len(rows["audit_events"]) == 2 * 6
    assert rows["audit_chain_heads"][0]["last_hash"] == rows["audit_events"][-1]["hash"]
    stored = {r["operation"]: r["result"] for r in rows["idempotency_keys"]}
    assert stored == {
        "applyForLoan": {"application": ["LoanApplication", application["id"]]},
        "decideApplication": {
            "application": ["LoanApplication", application["id"]],
            "decision": ["Decision", rows["decisions"][0]["id"]],
            "loan": ["Loan", loan["id"]],
        },
        "disburseLoan": {"loan": ["Loan", loan["id"]]},
        "recordPayment": {"payment": ["Payment", payment["id"]], "loan": ["Loan", loan["id"]]},
    }
    assert {r["actor"] for r in rows["idempotency_keys"]} == {ACTOR}


async def test_a_replay_writes_nothing_and_answers_the_same(
    engine: AsyncEngine, ceiling: WriteCeilingApp
) -> None:
    await create_product(engine)
    exchanges: list[Exchange] = []
    transport = httpx.ASGITransport(app=ceiling)
    async with _client(transport, exchanges) as client:
        await _w1(client)
        before = await _counts(engine)
        replayed = [
            (await client.post("/graphql", json=body)).json() for body, _ in list(exchanges)
        ]
        # the key again with another input: refused, nothing written
        body = exchanges[3][0]
        other = {"query": body["query"], "variables": {"input": body["variables"]["input"]}}
        other["variables"]["input"] = other["variables"]["input"] | {"amount": "501.00"}
        refused = (await client.post("/graphql", json=other)).json()
    assert await _counts(engine) == before
    # the same answers, their objects as they are now (as graph.mutation replays them): the
    # loan's payoff amount less the payment recorded since it was disbursed
    first = [answer for _, answer in exchanges[:4]]
    loan = first[2]["data"]["disburseLoan"]["loan"]
    loan["payoffAmount"] = str(Decimal(loan["payoffAmount"]) - Decimal("500.00"))
    assert replayed == first
    assert refused == {
        "data": {
            "recordPayment": {
                "payment": None,
                "userErrors": [
                    {
                        "code": "IDEMPOTENCY_KEY_REUSED",
                        "message": "This key was first used for another recordPayment input.",
                    }
                ],
            }
        }
    }


def _with(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"query": body["query"], "variables": {"input": body["variables"]["input"] | changes}}


def _codes(answer: dict[str, Any]) -> list[str]:
    payload = next(iter(answer["data"].values()))
    return [e["code"] for e in payload["userErrors"]]


async def test_refusals_write_nothing(engine: AsyncEngine, ceiling: WriteCeilingApp) -> None:
    await create_product(engine)
    exchanges: list[Exchange] = []
    async with _client(httpx.ASGITransport(app=ceiling), exchanges) as client:
        await _w1(client)
        before = await _counts(engine)
        apply, decide, disburse, pay = (body for body, _ in exchanges)
        refused = {
            "applied again": _with(apply, idempotencyKey="x1"),
            "applied while open": _with(apply, idempotencyKey="x6"),
            "decided again": _with(decide, idempotencyKey="x2"),
            "disbursed again": _with(disburse, idempotencyKey="x3"),
            "paid too much": _with(pay, idempotencyKey="x4", amount="99999.00"),
            "too large": _with(apply, idempotencyKey="x5", amount="1000000"),
        }
        answers = {
            name: _codes((await client.post("/graphql", json=body)).json())
            for name, body in refused.items()
        }
    assert answers == {
        "applied again": [],  # the first application was approved: none was open
        "applied while open": ["DUPLICATE_OPEN_APPLICATION"],
        "decided again": ["INVALID_TRANSITION"],
        "disbursed again": ["INVALID_TRANSITION"],
        "paid too much": ["OVERPAYMENT"],
        "too large": ["AMOUNT_OUT_OF_RANGE"],
    }
    after = await _counts(engine)
    # only the second application (and its key, event and chain) was written
    assert {t: after[t] - before[t] for t in TABLES if after[t] != before[t]} == {
        "loan_applications": 1,
        "idempotency_keys": 1,
        "audit_events": 1,
        "audit_chain_heads": 1,
    }


async def test_payments_waiting_on_the_loan_see_the_payments_before_them(
    engine: AsyncEngine, ceiling: WriteCeilingApp, database_url: str
) -> None:
    """A payment whose lock waited for another reads the loan's ledger again."""
    await create_product(engine)
    exchanges: list[Exchange] = []
    async with _client(httpx.ASGITransport(app=ceiling), exchanges) as client:
        await _w1(client)
        pay = exchanges[3][0]
        holder = await asyncpg.connect(_connect_url(database_url))
        try:
            transaction = holder.transaction()
            await transaction.start()
            await holder.execute("SELECT 1 FROM loans FOR UPDATE")
            waiting = [
                asyncio.create_task(
                    client.post("/graphql", json=_with(pay, idempotencyKey=f"p{n}", amount="100"))
                )
                for n in range(3)
            ]
            await asyncio.sleep(0.3)  # all three wait on the loan
            await transaction.rollback()
            answers = [(await task).json() for task in waiting]
        finally:
            await holder.close()
    assert all(a["data"]["recordPayment"]["userErrors"] == [] for a in answers)
    async with engine.connect() as connection:
        payments = (
            await connection.execute(
                text("SELECT id, amount, received_on, recorded_at FROM payments ORDER BY id")
            )
        ).all()
        installments = (
            await connection.execute(
                text(
                    "SELECT number, due_date, principal_due, interest_due FROM installments "
                    "ORDER BY number"
                )
            )
        ).all()
        stored = (
            await connection.execute(
                text(
                    "SELECT a.payment_id, i.number, a.principal, a.interest FROM "
                    "payment_allocations a JOIN installments i ON i.id = a.installment_id "
                    "ORDER BY a.payment_id, i.number"
                )
            )
        ).all()
        version = await connection.scalar(text("SELECT version FROM loans"))
    assert len(payments) == 4
    expected = allocate(
        [InstallmentDue(*i) for i in installments], [PaymentIn(*p) for p in payments]
    )
    assert [tuple(a) for a in stored] == sorted(
        (a.payment_key, a.installment_number, a.principal, a.interest) for a in expected.allocations
    )
    assert version == 1 + 1 + 4  # created, disbursed, then one move per payment
    async with create_sessionmaker(engine)() as session:
        assert (await verify(session)).broken is None
