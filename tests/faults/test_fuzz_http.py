"""At least 10,000 generated operations, valid and invalid, from every role, through HTTP to a
real server: none may fail the server (an HTTP 5xx or an INTERNAL_SERVER_ERROR).

The strategies are the test suite's fuzzer's (tests/api/test_fuzz.py), scaled up. The seed is
fixed, so that every run sends the same operations; FAULTS_SEED=random draws new ones (and
prints the seed, which FAULTS_SEED=<seed> draws again).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter

from hypothesis_graphql import Mode, from_schema

from db.session import create_engine
from lending.access import Role
from tests.api.test_fuzz import SDL, dates, datetimes, decimals, ids, seed_data, server_failure
from tests.examples import collect
from tests.faults.harness import Database, Server, client, figure, fresh_database

VALID = 7_000
INVALID = 3_000
SENDERS = 8
SEED = 20261201


async def test_ten_thousand_generated_operations_never_fail_the_server(pg: Database):
    url, keys = await fresh_database(pg, "faults_fuzz")
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        existing = await seed_data(engine, product_code="FUZZ-USD")
    finally:
        await engine.dispose()
    chosen = os.environ.get("FAULTS_SEED", str(SEED))
    seed = random.randrange(1 << 30) if chosen == "random" else int(chosen)
    scalars = {"Decimal": decimals(), "Date": dates(), "DateTime": datetimes(), "ID": ids(existing)}
    began = time.monotonic()
    operations = [
        *collect(from_schema(SDL, custom_scalars=scalars), VALID, seed_value=seed),
        *collect(from_schema(SDL, custom_scalars=scalars, mode=Mode.NEGATIVE), INVALID, seed + 1),
    ]
    generated = time.monotonic() - began

    server = Server(url)
    await server.start()
    roles = list(Role)
    codes: Counter[str] = Counter()
    failures: list[str] = []

    async def send(share: list[tuple[int, str]]) -> None:
        clients = {role: client(server.base, keys[role], connections=1) for role in roles}
        try:
            for n, operation in share:
                role = roles[n % len(roles)]
                response = await clients[role].post("/graphql", json={"query": operation})
                if server_failure(response):
                    failures.append(f"{role.value}: {operation}\n→ {response.status_code} "
                                    f"{response.text[:500]}")  # fmt: skip
                try:
                    errors = response.json().get("errors") or []
                except ValueError:
                    errors = [{"extensions": {"code": f"HTTP {response.status_code}"}}]
                codes.update((e.get("extensions") or {}).get("code", "none") for e in errors)
        finally:
            for http in clients.values():
                await http.aclose()

    began = time.monotonic()
    numbered = list(enumerate(operations))
    try:
        await asyncio.gather(*(send(numbered[i::SENDERS]) for i in range(SENDERS)))
    finally:
        log = await server.stop()
    sent = time.monotonic() - began

    figure(
        "fuzz",
        f"{len(operations)} operations (seed {seed}), generated in {generated:.0f} s, sent in "
        f"{sent:.0f} s by {SENDERS} clients, every role in turn",
    )
    figure("fuzz", f"errors by code: {dict(codes.most_common())}")
    figure("fuzz", f"server failures: {len(failures)}")

    assert len(operations) >= VALID + INVALID - 100
    assert failures == [], "\n\n".join(failures[:5])
    assert "Traceback" not in log, log[-3000:]
