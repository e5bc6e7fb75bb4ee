"""PostgreSQL stopped (fast shutdown) and started again under load: only 200s and 503s, a quick
recovery, and nothing failing once recovered."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from lending.access import Role
from tests.faults.harness import Database, Server, client, figure, fresh_database

CLIENTS = 12
OUTAGE_SECONDS = 3.0

READS = [
    "{ loanProducts { code name } }",  # compiled, the short path
    "{ applications(first: 5) { totalCount edges { node { reference applicant { email } } } } }",
]
APPLY = """mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) {
  application { id } userErrors { code } } }"""


@dataclass(frozen=True)
class Answer:
    sent: float
    received: float
    status: int  # 0: no answer at all
    ok: bool  # 200 and no error


async def _load(base: str, key: str, n: int, until: float, answers: list[Answer]) -> None:
    async with client(base, key, connections=1, timeout=10) as http:
        i = 0
        while time.monotonic() < until:
            i += 1
            if i % 3 == 0:
                variables = {
                    "input": {
                        "applicant": {"fullName": "Load", "email": f"load{n}-{i}@example.com"},
                        "productCode": "PERSONAL-USD",
                        "amount": "2000",
                        "termMonths": 6,
                        "idempotencyKey": f"load-{n}-{i}",
                    }
                }
                payload = {"query": APPLY, "variables": variables}
            else:
                payload = {"query": READS[i % 2]}
            sent = time.monotonic()
            try:
                response = await http.post("/graphql", json=payload)
                status = response.status_code
                body = response.json()
                ok = status == 200 and not body.get("errors")
            except Exception:
                status, ok = 0, False
            answers.append(Answer(sent, time.monotonic(), status, ok))
            await asyncio.sleep(0.01)


async def test_postgres_stopped_and_started_under_load(pg: Database):
    url, keys = await fresh_database(pg, "faults_outage")
    server = Server(url, env={"DB_POOL_TIMEOUT": "2"})
    await server.start()
    answers: list[Answer] = []
    began = time.monotonic()
    until = began + 2 + OUTAGE_SECONDS + 5
    load = [
        asyncio.create_task(_load(server.base, keys[Role.ADMIN], n, until, answers))
        for n in range(CLIENTS)
    ]
    try:
        await asyncio.sleep(2)
        await asyncio.to_thread(pg.stop_fast)
        down = time.monotonic()
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(pg.start)
        back = time.monotonic()  # PostgreSQL accepts connections from here
        await asyncio.gather(*load)
    finally:
        log = await server.stop()

    during = [a for a in answers if a.sent >= down and a.received <= back]
    other = [a for a in during if a.status not in (200, 503)]
    first_ok = min((a.received for a in answers if a.sent >= back and a.ok), default=None)
    after = [a for a in answers if first_ok is not None and a.sent >= first_ok]
    failed_after = [a for a in after if not a.ok]
    statuses = sorted({a.status for a in during})

    figure("outage", f"{CLIENTS} clients, reads and writes; PostgreSQL down {back - down:.1f} s")
    figure(
        "outage",
        f"during the outage: {len(during)} answers, statuses {statuses}, {len(other)} other "
        "than 200 or 503",
    )
    recovery = "never" if first_ok is None else f"{first_ok - back:.2f} s"
    figure("outage", f"recovery: first success {recovery} after PostgreSQL was back")
    figure("outage", f"after recovery: {len(after)} requests, {len(failed_after)} failed")

    assert other == []
    assert during, "no request ran during the outage"
    assert first_ok is not None
    assert first_ok - back < 1.0
    assert failed_after == []
    assert "Traceback" not in log, log[-3000:]
