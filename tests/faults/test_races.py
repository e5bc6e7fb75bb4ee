"""1,000 rounds of 20 concurrent conflicting decisions on one application: one winner a round.

Every decision carries expectedVersion 1 and the outcomes are mixed (APPROVED, REJECTED,
REFERRED), so exactly one may succeed; the others must be refused with STALE_VERSION or
INVALID_TRANSITION, and the database must hold one decision per application.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from sqlalchemy import text

from db.session import create_engine
from lending.access import Role
from tests.faults.harness import Database, Server, client, figure, fresh_database

ROUNDS = 1_000
CONTENDERS = 20
AT_ONCE = 4  # rounds run side by side
OUTCOMES = ("APPROVED", "REJECTED", "REFERRED")

APPLY = """mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) {
  application { id } userErrors { code } } }"""
DECIDE = """mutation($input: DecideApplicationInput!) { decideApplication(input: $input) {
  decision { outcome } userErrors { code } } }"""


async def test_a_thousand_rounds_of_conflicting_decisions_have_one_winner_each(pg: Database):
    url, keys = await fresh_database(pg, "faults_races")
    server = Server(url)
    await server.start()
    refusals: Counter[str] = Counter()
    winners: Counter[str] = Counter()
    bad_rounds: list[str] = []
    began = time.monotonic()
    try:
        async with client(server.base, keys[Role.ADMIN], connections=CONTENDERS * AT_ONCE) as http:

            async def round_(n: int) -> None:
                applied = await http.post(
                    "/graphql",
                    json={
                        "query": APPLY,
                        "variables": {
                            "input": {
                                "applicant": {"fullName": "Race", "email": f"race{n}@example.com"},
                                "productCode": "PERSONAL-USD",
                                "amount": "4000",
                                "termMonths": 12,
                            }
                        },
                    },
                )
                app_id = applied.json()["data"]["applyForLoan"]["application"]["id"]
                answers = await asyncio.gather(
                    *(
                        http.post(
                            "/graphql",
                            json={
                                "query": DECIDE,
                                "variables": {
                                    "input": {
                                        "applicationId": app_id,
                                        "outcome": OUTCOMES[(n + i) % len(OUTCOMES)],
                                        "reason": f"contender {i}",
                                        "expectedVersion": 1,
                                    }
                                },
                            },
                        )
                        for i in range(CONTENDERS)
                    )
                )
                won = 0
                for answer in answers:
                    payload = answer.json()["data"]["decideApplication"]
                    if payload["userErrors"]:
                        refusals.update(e["code"] for e in payload["userErrors"])
                    else:
                        won += 1
                        winners[payload["decision"]["outcome"]] += 1
                if won != 1:
                    bad_rounds.append(f"round {n}: {won} winners")

            for start in range(0, ROUNDS, AT_ONCE):
                await asyncio.gather(*(round_(n) for n in range(start, start + AT_ONCE)))
    finally:
        log = await server.stop()
    seconds = time.monotonic() - began

    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            decisions = await connection.scalar(text("SELECT count(*) FROM decisions"))
            doubled = await connection.scalar(
                text(
                    "SELECT count(*) FROM (SELECT application_id FROM decisions "
                    "GROUP BY application_id HAVING count(*) > 1) AS twice"
                )
            )
            loans = await connection.scalar(text("SELECT count(*) FROM loans"))
            versions = await connection.scalar(
                text("SELECT count(*) FROM loan_applications WHERE version <> 2")
            )
    finally:
        await engine.dispose()

    figure(
        "races",
        f"{ROUNDS} rounds of {CONTENDERS} concurrent decisions in {seconds:.0f} s: "
        f"{len(bad_rounds)} rounds without exactly one winner",
    )
    figure("races", f"winners by outcome: {dict(winners)}; refusals: {dict(refusals)}")
    figure(
        "races",
        f"rows: {decisions} decisions, {doubled} applications decided twice, {loans} loans",
    )

    assert bad_rounds == [], bad_rounds[:5]
    assert decisions == ROUNDS
    assert doubled == 0
    assert loans == winners["APPROVED"]
    assert versions == 0
    assert set(refusals) <= {"STALE_VERSION", "INVALID_TRANSITION"}
    assert "Traceback" not in log, log[-3000:]
