"""The benchmark's ceiling answers like the service: its SQL and Python paths agree byte for byte.

Runs the ceiling's ASGI app in-process against a small database of its own
(``lending_ceiling_smoke``), filled through the lending services for the interesting rows and
with plain SQL for a page's worth of approved applications. Nothing external is started.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.ceiling import PAGE_SIZE, CeilingApp
from db.embedded import admin_connection, ensure_database
from db.migrate import upgrade_to_head
from db.session import create_engine, create_sessionmaker
from graph.ids import to_global_id
from graph.relay import encode_cursor
from graph.server.app import create_app
from graph.server.settings import Settings
from lending.access import Role
from lending.services import api_keys as key_service
from tests.factories import create_application, create_loan, create_product, decide

DATABASE = "lending_ceiling_smoke"
# A page and a half of APPROVED applications, so R2 has a next page and R3 a partial one.
BULK = 70
BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

R1_FIELDS = (
    "reference status amountRequested submittedAt applicant { fullName email } "
    "decisions { outcome reason decidedAt } "
    "loan { reference status principal annualInterestRate termMonths "
    "schedule { installments { number dueDate principalDue interestDue totalDue } } }"
)


async def _drop(server_url: str) -> None:
    connection = await admin_connection(server_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def smoke_url(server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this module only (dropped afterwards)."""
    asyncio.run(_drop(server_url))
    url = asyncio.run(ensure_database(server_url, DATABASE))
    upgrade_to_head(url)
    yield url
    asyncio.run(_drop(server_url))


async def _fill(engine: AsyncEngine) -> None:
    await create_product(engine)
    # Through the services: disbursed loans (schedules), a loan not yet disbursed, a referral
    # before an approval, a rejection and an open application.
    for n in range(3):
        await create_loan(engine, disbursed_on=date(2025, 1, 10 + n), term_months=6 + 6 * n)
    await create_loan(engine, submitted_at=BASE + timedelta(days=400))
    referred = await create_application(engine, submitted_at=BASE + timedelta(days=401))
    await decide(engine, referred.id, "REFERRED", decided_at=BASE + timedelta(days=401, hours=1))
    await decide(engine, referred.id, "APPROVED", decided_at=BASE + timedelta(days=402))
    rejected = await create_application(engine, submitted_at=BASE + timedelta(days=403))
    await decide(engine, rejected.id, "REJECTED")
    await create_application(engine, submitted_at=BASE + timedelta(days=404, microseconds=5))
    # Plain SQL: approved applications with a decision and a loan each. Threes share a
    # submission time (the id breaks the tie); fractions of a second are zero or round.
    async with engine.begin() as connection:
        await connection.execute(
            text(
                """
                WITH series AS (
                    SELECT g FROM generate_series(1, :n) g
                ), people AS (
                    INSERT INTO applicants (full_name, email)
                    SELECT 'Bulk ' || g || ' "ü"', 'bulk' || g || '@example.com' FROM series
                    RETURNING id, email
                ), numbered AS (
                    SELECT p.id, s.g FROM people p
                    JOIN series s ON p.email = 'bulk' || s.g || '@example.com'
                ), apps AS (
                    INSERT INTO loan_applications (reference, applicant_id, product_id,
                        amount_requested, term_months, status, submitted_at)
                    SELECT 'BULK-' || n.g, n.id, (SELECT min(id) FROM loan_products),
                        1000 + n.g * 17.25, 12, 'APPROVED',
                        CAST(:base AS timestamptz) + (n.g / 3) * interval '1 hour'
                            + (n.g / 3 % 4) * interval '120 ms'
                    FROM numbered n
                    RETURNING id, applicant_id, amount_requested, submitted_at
                ), decided AS (
                    INSERT INTO decisions (application_id, outcome, reason, decided_by,
                        decided_at)
                    SELECT id, 'APPROVED', 'Bulk approval.', 'tester',
                        submitted_at + interval '1 day'
                    FROM apps
                )
                INSERT INTO loans (reference, application_id, applicant_id, principal,
                    currency, annual_interest_rate, term_months, amortization, frequency,
                    day_count, status, approved_at)
                SELECT 'LB-' || id, id, applicant_id, amount_requested, 'USD', 9.5, 12,
                    'ANNUITY', 'MONTHLY', 'THIRTY_360', 'APPROVED', submitted_at
                FROM apps
                """
            ),
            {"n": BULK, "base": BASE},
        )


@pytest.fixture(scope="module")
async def engine(smoke_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(smoke_url, pool_size=2, max_overflow=2)
    await _fill(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def ceiling(smoke_url: str, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = CeilingApp(smoke_url, pool_size=2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ceiling") as client:
        yield client
    await app.close()


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> bytes:
    response = await client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.content


async def _both(client: httpx.AsyncClient, workload: str, body: dict[str, Any]) -> Any:
    """The /sql and /py answers, checked identical; returns the parsed document."""
    from_sql = await _post(client, f"/sql/{workload}", body)
    from_py = await _post(client, f"/py/{workload}", body)
    assert json.loads(from_sql) == json.loads(from_py)
    assert from_sql == from_py  # the same bytes, too: the response sizes compare fairly
    return json.loads(from_sql)


async def _application_ids(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as connection:
        return list((await connection.scalars(text("SELECT id FROM loan_applications"))).all())


async def _approved_order(engine: AsyncEngine) -> list[tuple[datetime, int, str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT submitted_at, id, reference FROM loan_applications "
                "WHERE status = 'APPROVED' ORDER BY submitted_at DESC, id DESC"
            )
        )
        return [(r.submitted_at, r.id, r.reference) for r in rows]


async def test_r1_sql_and_python_agree(ceiling: httpx.AsyncClient, engine: AsyncEngine) -> None:
    ids = await _application_ids(engine)
    schedules = 0
    for key in ids:
        document = await _both(ceiling, "r1", {"id": key})
        application = document["application"]
        assert application is not None
        loan = application["loan"]
        if loan and loan["schedule"]:
            schedules += 1
            installments = loan["schedule"]["installments"]
            assert [i["number"] for i in installments] == list(range(1, loan["termMonths"] + 1))
            for i in installments:
                assert isinstance(i["principalDue"], str)
                total = float(i["principalDue"]) + float(i["interestDue"])
                assert abs(float(i["totalDue"]) - total) < 0.001
    assert schedules == 3
    assert await _both(ceiling, "r1", {"id": max(ids) + 1000}) == {"application": None}


async def test_r1_decisions_oldest_first(ceiling: httpx.AsyncClient, engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        key = await connection.scalar(
            text("SELECT application_id FROM decisions WHERE outcome = 'REFERRED'")
        )
    document = await _both(ceiling, "r1", {"id": key})
    outcomes = [d["outcome"] for d in document["application"]["decisions"]]
    assert outcomes == ["REFERRED", "APPROVED"]
    assert document["application"]["loan"]["schedule"] is None  # approved, not disbursed


async def test_r2_pages_agree(ceiling: httpx.AsyncClient, engine: AsyncEngine) -> None:
    order = await _approved_order(engine)
    assert len(order) > PAGE_SIZE

    first = (await _both(ceiling, "r2", {"after": None}))["applications"]
    assert [e["node"]["reference"] for e in first["edges"]] == [r[2] for r in order[:PAGE_SIZE]]
    last_at, last_id, _ = order[PAGE_SIZE - 1]
    assert first["pageInfo"] == {
        "endCursor": encode_cursor("SUBMITTED_AT:DESC", last_at, last_id),
        "hasNextPage": True,
    }

    # R3: after a keyset position, as the harness sends it.
    start = 7
    at, key, _ = order[start]
    after = (await _both(ceiling, "r2", {"after": [at.isoformat(), key]}))["applications"]
    rest = order[start + 1 :]
    assert [e["node"]["reference"] for e in after["edges"]] == [r[2] for r in rest[:PAGE_SIZE]]
    assert after["pageInfo"]["hasNextPage"] is (len(rest) > PAGE_SIZE)

    at, key, _ = order[-1]
    empty = (await _both(ceiling, "r2", {"after": [at.isoformat(), key]}))["applications"]
    assert empty == {"edges": [], "pageInfo": {"endCursor": None, "hasNextPage": False}}


async def test_ceiling_matches_the_service(
    ceiling: httpx.AsyncClient, engine: AsyncEngine, smoke_url: str
) -> None:
    """The ceiling's documents are our GraphQL responses' `data`, field for field."""
    async with create_sessionmaker(engine)() as session, session.begin():
        _, key = await key_service.create_key(session, name="ceiling-smoke", role=Role.ADMIN)
    service = create_app(Settings(database_url=smoke_url, access_log=False), smoke_url)
    transport = httpx.ASGITransport(app=service)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://s", headers=headers) as c:

        async def data(query: str, variables: dict[str, Any]) -> Any:
            response = await c.post("/graphql", json={"query": query, "variables": variables})
            body = response.json()
            assert "errors" not in body, body
            return body["data"]

        r1 = f"query R1($id: ID!) {{ application(id: $id) {{ {R1_FIELDS} }} }}"
        for row_id in await _application_ids(engine):
            ours = await data(r1, {"id": to_global_id("LoanApplication", row_id)})
            assert ours == json.loads(await _post(ceiling, "/py/r1", {"id": row_id}))

        r2 = (
            "query R2($after: String) { applications(first: 50, after: $after, "
            "filter: {status: [APPROVED]}, orderBy: {field: SUBMITTED_AT, direction: DESC}) "
            f"{{ edges {{ node {{ {R1_FIELDS} }} }} pageInfo {{ endCursor hasNextPage }} }} }}"
        )
        at, row_id, _ = (await _approved_order(engine))[3]
        ours = await data(r2, {"after": encode_cursor("SUBMITTED_AT:DESC", at, row_id)})
        mine = await _post(ceiling, "/py/r2", {"after": [at.isoformat(), row_id]})
        assert ours == json.loads(mine)


async def test_bad_requests(ceiling: httpx.AsyncClient) -> None:
    assert (await ceiling.post("/sql/r1", json={"id": "seven"})).status_code == 400
    assert (await ceiling.post("/py/r2", json={"after": ["not a time", 1]})).status_code == 400
    assert (await ceiling.post("/sql/r3", json={})).status_code == 404
    assert (await ceiling.get("/sql/r1")).status_code == 405
    assert (await ceiling.get("/health")).status_code == 200
