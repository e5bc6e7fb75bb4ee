"""The bad-input phase: every malformed request of the probe that found them, against a real
server, each reported with its status, the time it took to answer, and that nothing was
written: bodies that are not UTF-8 or JSON, nested 10,000 deep, a 5,000-digit integer, lone
surrogates and NUL in mutations and queries, a client gone mid-body, and a writer behind a row
lock held from outside.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
from sqlalchemy import text

from db.session import create_engine, raw_connection
from tests.api.operations import APPLY, apply_input
from tests.db.test_malformed_http import CASES, raw_exchange
from tests.faults.harness import Database, Server, figure, fresh_database

TABLES = ("applicants", "loan_applications", "decisions", "loans", "idempotency_keys")
DECIDE = """mutation($input: DecideApplicationInput!) { decideApplication(input: $input) {
  decision { id } userErrors { code } } }"""


async def row_counts(url: str) -> dict[str, int]:
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            return {
                t: (await connection.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one()
                for t in TABLES
            }
    finally:
        await engine.dispose()


def surrogate_body(query: str, variables: dict) -> bytes:
    return json.dumps({"query": query, "variables": variables}).encode()  # JSON's escapes


async def test_bad_input_is_refused_quickly_and_writes_nothing(pg: Database) -> None:
    url, keys = await fresh_database(pg, "faults_bad_input")
    server = Server(url, env={"DB_LOCK_TIMEOUT": "1"})
    await server.start()
    admin = keys[next(iter(keys))]
    headers = {"content-type": "application/json", "authorization": f"Bearer {admin}"}
    bodies = dict(CASES)
    bodies["lone surrogate in a mutation"] = surrogate_body(
        APPLY, {"input": apply_input() | {"purpose": "car \ud800"}}
    )
    bodies["NUL in a mutation"] = surrogate_body(
        APPLY, {"input": apply_input() | {"purpose": "\x00"}}
    )
    bodies["lone surrogate in a filter"] = surrogate_body(
        "query($n: String) { applicants(filter: { nameContains: $n }) { totalCount } }",
        {"n": "x\udc00"},
    )
    failures: list[str] = []
    try:
        before = await row_counts(url)
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
            for name, body in bodies.items():
                for with_key in (True, False):
                    sent = headers if with_key else {"content-type": "application/json"}
                    began = time.monotonic()
                    answer = await client.post("/graphql", content=body, headers=sent)
                    ms = (time.monotonic() - began) * 1000
                    try:
                        codes = [e["extensions"]["code"] for e in answer.json().get("errors", [])]
                        payload = answer.json().get("data") or {}
                        codes += [
                            e["code"]
                            for v in payload.values()
                            if isinstance(v, dict)
                            for e in v.get("userErrors", [])
                        ]
                    except ValueError:
                        codes = ["not JSON"]
                    who = "with key" if with_key else "no key"
                    figure("bad input", f"{name} ({who}): {answer.status_code} {codes} {ms:.0f} ms")
                    if answer.status_code >= 500 or not codes or "INTERNAL_SERVER_ERROR" in codes:
                        failures.append(f"{name} ({who}): {answer.status_code} {answer.text[:300]}")

            # a client gone mid-body, ten times
            port = int(server.base.rsplit(":", 1)[1])
            apply = surrogate_body(APPLY, {"input": apply_input()})
            head = (
                f"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Authorization: Bearer {admin}\r\nContent-Length: {len(apply)}\r\n\r\n"
            ).encode()
            for _ in range(10):
                await asyncio.to_thread(raw_exchange, port, head, apply[: len(apply) // 2], False)
            figure("bad input", "10 clients gone mid-body: answered nobody, wrote nothing")
            after = await row_counts(url)
            figure("bad input", f"rows before {before}, after {after}")
            if after != before:
                failures.append(f"rows changed: {before} -> {after}")

            # a writer behind a row lock held from outside
            applied = await client.post(
                "/graphql",
                json={
                    "query": APPLY,
                    "variables": {
                        "input": apply_input(
                            applicant={"fullName": "Lock", "email": "lock@example.com"}
                        )
                    },
                },
                headers=headers,
            )
            app_id = applied.json()["data"]["applyForLoan"]["application"]["id"]
            blocker = await raw_connection(url)
            await blocker.execute("BEGIN")
            await blocker.execute("SELECT 1 FROM loan_applications FOR UPDATE")
            try:
                decide = {"input": {"applicationId": app_id, "outcome": "REJECTED", "reason": "x"}}
                began = time.monotonic()
                answer = await client.post(
                    "/graphql", json={"query": DECIDE, "variables": decide}, headers=headers
                )
                waited = time.monotonic() - began
                began = time.monotonic()
                read = await client.post(
                    "/graphql", json={"query": "{ loanProducts { code } }"}, headers=headers
                )
                read_ms = (time.monotonic() - began) * 1000
            finally:
                await blocker.execute("ROLLBACK")
                await blocker.close()
            code = answer.json()["errors"][0]["extensions"]["code"]
            figure(
                "bad input",
                f"writer behind a held row lock: {answer.status_code} {code} after {waited:.2f} s"
                f" (DB_LOCK_TIMEOUT=1); a read meanwhile {read.status_code} in {read_ms:.0f} ms",
            )
            if answer.status_code != 503 or waited > 3 or read.status_code != 200:
                failures.append(
                    f"lock: {answer.status_code} {waited:.2f} s, read {read.status_code}"
                )
    finally:
        log = await server.stop()
    assert failures == [], failures
    assert "Traceback" not in log, log[-3000:]
    assert " ERROR " not in log, log[-3000:]
