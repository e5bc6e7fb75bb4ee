"""kill -9 of a server process, then of PostgreSQL, under 16 agents writing with idempotency keys.

Each agent runs apply → decide → disburse → pay, one idempotency key per step, and retries a
step it got no answer for (or a 503) with the same key until it is acknowledged. Afterwards
every acknowledged write must be in the database exactly once, every retried one too, and the
audit chains must verify.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import text

from db.session import create_engine
from lending.access import Role
from tests.faults.harness import Database, Server, audit_verify, client, figure, fresh_database

WRITERS = 16
RUN_SECONDS = 16  # the server is killed at 3 s, PostgreSQL at 9 s

APPLY = """mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) {
  application { id } userErrors { code } replayed } }"""
DECIDE = """mutation($input: DecideApplicationInput!) { decideApplication(input: $input) {
  loan { id } userErrors { code } replayed } }"""
DISBURSE = """mutation($input: DisburseLoanInput!) { disburseLoan(input: $input) {
  loan { status } userErrors { code } replayed } }"""
PAY = """mutation($input: RecordPaymentInput!) { recordPayment(input: $input) {
  payment { id } userErrors { code } replayed } }"""


@dataclass
class Tally:
    """What the agents saw."""

    acknowledged: Counter[str] = field(default_factory=Counter)  # by step
    replayed: int = 0
    retries: int = 0
    unexpected: list[str] = field(default_factory=list)
    sequences: list[str] = field(default_factory=list)  # tags of completed sequences
    started: list[str] = field(default_factory=list)


async def _step(http, tally: Tally, name: str, query: str, variables: dict) -> dict:
    """Send one step until it is acknowledged; its payload."""
    while True:
        try:
            response = await http.post("/graphql", json={"query": query, "variables": variables})
        except Exception:  # refused, reset: the server is down or restarting
            tally.retries += 1
            await asyncio.sleep(0.2)
            continue
        if response.status_code == 503:
            tally.retries += 1
            await asyncio.sleep(float(response.headers.get("retry-after", "1")) / 5)
            continue
        body = response.json()
        payload = next(iter((body.get("data") or {}).values()), None)
        if response.status_code != 200 or body.get("errors") or not payload:
            tally.unexpected.append(f"{name}: {response.status_code} {response.text[:300]}")
            raise RuntimeError("unexpected answer")
        if payload["userErrors"]:
            tally.unexpected.append(f"{name}: {payload['userErrors']}")
            raise RuntimeError("unexpected userErrors")
        tally.acknowledged[name] += 1
        tally.replayed += bool(payload["replayed"])
        return payload


async def _agent(base: str, key: str, n: int, deadline: float, tally: Tally) -> None:
    async with client(base, key, connections=2, timeout=20) as http:
        i = 0
        while time.monotonic() < deadline:
            tag = f"a{n:02d}s{i:04d}"
            i += 1
            tally.started.append(tag)
            applied = await _step(
                http,
                tally,
                "apply",
                APPLY,
                {
                    "input": {
                        "applicant": {"fullName": f"Agent {tag}", "email": f"{tag}@example.com"},
                        "productCode": "PERSONAL-USD",
                        "amount": "3000",
                        "termMonths": 12,
                        "idempotencyKey": f"{tag}-apply",
                    }
                },
            )
            decided = await _step(
                http,
                tally,
                "decide",
                DECIDE,
                {
                    "input": {
                        "applicationId": applied["application"]["id"],
                        "outcome": "APPROVED",
                        "reason": "fault suite",
                        "idempotencyKey": f"{tag}-decide",
                    }
                },
            )
            loan_id = decided["loan"]["id"]
            await _step(
                http,
                tally,
                "disburse",
                DISBURSE,
                {"input": {"loanId": loan_id, "idempotencyKey": f"{tag}-disburse"}},
            )
            await _step(
                http,
                tally,
                "pay",
                PAY,
                {
                    "input": {
                        "loanId": loan_id,
                        "amount": "100.00",
                        "reference": f"{tag}-ref",
                        "idempotencyKey": f"{tag}-pay",
                    }
                },
            )
            tally.sequences.append(tag)


async def test_kill_9_of_a_server_and_of_postgres_loses_and_duplicates_nothing(pg: Database):
    url, keys = await fresh_database(pg, "faults_crashes")
    server = Server(url)
    await server.start()
    tally = Tally()
    began = time.monotonic()
    deadline = began + RUN_SECONDS
    agents = [
        asyncio.create_task(_agent(server.base, keys[Role.ADMIN], n, deadline, tally))
        for n in range(WRITERS)
    ]
    try:
        # the server process dies at 3 s and a new one is started on the same port
        await asyncio.sleep(3)
        server.kill()
        killed_at = time.monotonic()
        await server.start()
        server_back = time.monotonic() - killed_at
        # PostgreSQL dies at 9 s and is started again (crash recovery from its log)
        await asyncio.sleep(max(0.0, began + 9 - time.monotonic()))
        await asyncio.to_thread(pg.kill)
        killed_at = time.monotonic()
        await asyncio.to_thread(pg.start)
        pg_back = time.monotonic() - killed_at
        await asyncio.gather(*agents)
    finally:
        for agent in agents:
            agent.cancel()
        log = await server.stop()

    # then every sequence the agents completed is in the database, each step exactly once
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            counts = {
                name: await connection.scalar(text(sql))
                for name, sql in {
                    "applications": "SELECT count(*) FROM loan_applications",
                    "decisions": "SELECT count(*) FROM decisions",
                    "loans": "SELECT count(*) FROM loans",
                    "active": "SELECT count(*) FROM loans WHERE status = 'ACTIVE'",
                    "instalments": "SELECT count(*) FROM installments",
                    "payments": "SELECT count(*) FROM payments",
                    "references": "SELECT count(DISTINCT reference) FROM payments",
                    "keys": "SELECT count(*) FROM idempotency_keys",
                }.items()
            }
    finally:
        await engine.dispose()
    done = len(tally.sequences)
    verified = audit_verify(url)

    figure("kill -9", f"{WRITERS} agents for {RUN_SECONDS} s: {done} sequences of 4 writes")
    figure(
        "kill -9",
        f"acknowledged {sum(tally.acknowledged.values())} writes, {tally.retries} retries of "
        f"unanswered ones, {tally.replayed} answered as replays",
    )
    figure(
        "kill -9",
        f"server back {server_back:.1f} s after kill -9; PostgreSQL back {pg_back:.1f} s after",
    )
    figure(
        "kill -9",
        f"rows: {counts['applications']} applications, {counts['decisions']} decisions, "
        f"{counts['loans']} loans ({counts['active']} active), {counts['payments']} payments; "
        f"0 lost, {counts['payments'] - counts['references']} duplicated",
    )
    figure("kill -9", f"audit verify: exit {verified.returncode} ({verified.stdout.strip()})")

    assert tally.unexpected == [], tally.unexpected[:5]
    assert "Traceback" not in log, log[-3000:]
    assert done > 2 * WRITERS
    assert len(tally.started) == done
    assert counts["applications"] == counts["decisions"] == counts["loans"] == done
    assert counts["active"] == counts["payments"] == counts["references"] == done
    assert counts["instalments"] == 12 * done
    assert counts["keys"] == 4 * done
    assert verified.returncode == 0, verified.stdout + verified.stderr
