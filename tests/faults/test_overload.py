"""200 concurrent clients of one key against a pool of 10, and two slow-loris connections:
health checks and another key's small queries keep answering, and the flood is answered 429
(beyond its key's share) or 503 (pool exhausted), never worse."""

from __future__ import annotations

import asyncio
import json
import time

from lending.access import Role
from tests.faults.harness import (
    Database,
    Server,
    client,
    figure,
    fresh_database,
    load,
    percentile,
)

CLIENTS = 200
SECONDS = 8.0
HEAVY = """{ applications(first: 50) { totalCount edges { node {
  reference status applicant { email } decisions { outcome } } } } }"""
SMALL = "{ loanProducts { code } }"
SEED = """mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) {
  userErrors { code } } }"""


async def _probe(
    base: str, key: str, until: float, health: list[float], small: list[float], bad: list[str]
) -> None:
    async with client(base, key, connections=2, timeout=30) as http:
        while time.monotonic() < until:
            began = time.monotonic()
            response = await http.get("/healthz")
            health.append(time.monotonic() - began)
            if response.status_code != 200:
                bad.append(f"healthz {response.status_code}")
            began = time.monotonic()
            response = await http.post("/graphql", json={"query": SMALL})
            small.append(time.monotonic() - began)
            if response.status_code != 200:
                bad.append(f"small {response.status_code} {response.text[:200]}")
            await asyncio.sleep(0.05)


async def _slow_loris(port: int, until: float) -> int:
    """A client sending a request one byte a second; how many bytes it got to send."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
    sent = 0
    try:
        for byte in head + b"{" * 100:
            if time.monotonic() >= until:
                break
            writer.write(bytes([byte]))
            await writer.drain()
            sent += 1
            await asyncio.sleep(1)
    except ConnectionError:
        pass
    finally:
        writer.close()
    return sent


async def test_two_hundred_clients_and_slow_loris_against_a_pool_of_ten(pg: Database, tmp_path):
    url, keys = await fresh_database(pg, "faults_overload")
    key, light = keys[Role.ADMIN], keys[Role.SERVICER]
    server = Server(url, env={"DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "2"})
    await server.start()
    async with client(server.base, key) as http:
        for n in range(60):
            variables = {
                "input": {
                    "applicant": {"fullName": f"Heavy {n}", "email": f"heavy{n}@example.com"},
                    "productCode": "PERSONAL-USD",
                    "amount": "2500",
                    "termMonths": 12,
                }
            }
            await http.post("/graphql", json={"query": SEED, "variables": variables})
    bodies = tmp_path / "heavy.jsonl"
    bodies.write_text(json.dumps({"query": HEAVY}) + "\n")
    health: list[float] = []
    small: list[float] = []
    bad: list[str] = []
    until = time.monotonic() + SECONDS
    try:
        *loris, _, heavy = await asyncio.gather(
            *(_slow_loris(server.port, until) for _ in range(2)),
            _probe(server.base, light, until, health, small, bad),
            load(server.base, key, bodies, CLIENTS, SECONDS),
        )
    finally:
        log = await server.stop()
    statuses = {int(code): count for code, count in heavy["statuses"].items()}

    figure(
        "overload",
        f"{CLIENTS} clients for {SECONDS:.0f} s against a pool of 10: {heavy['requests']} reads, "
        f"{heavy['rps']} req/s, p50 {heavy['p50_ms']:.0f} ms, p99 {heavy['p99_ms']:.0f} ms",
    )
    figure("overload", f"their answers by status: {statuses}")
    figure("overload", f"two slow-loris connections sent {loris} bytes, one a second")
    figure(
        "overload",
        f"/healthz: {len(health)} probes, p50 {percentile(health, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(health, 0.99) * 1000:.0f} ms",
    )
    figure(
        "overload",
        f"another key's small query: {len(small)} probes, "
        f"p50 {percentile(small, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(small, 0.99) * 1000:.0f} ms; {len(bad)} not answered 200",
    )

    assert bad == []
    assert set(statuses) <= {200, 429, 503}, statuses
    assert statuses[200] > 0
    assert "Traceback" not in log, log[-3000:]
