"""At least 10,000 generated operations, valid and invalid, from every role, through HTTP to a
real server: none may fail the server (an HTTP 5xx or an INTERNAL_SERVER_ERROR).

The strategies are the test suite's fuzzer's (tests/api/test_fuzz.py), scaled up. The seed is
fixed, so that every run sends the same operations; FAULTS_SEED=random draws new ones (and
prints the seed, which FAULTS_SEED=<seed> draws again).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter
from typing import Any

import httpx
from gql.transport.exceptions import TransportQueryError
from graphql import GraphQLError
from hypothesis_graphql import Mode, from_schema

from db.session import create_engine
from lending.access import STAFF_ROLES, Role
from tests.api.test_fuzz import (
    SDL,
    dates,
    datetimes,
    decimals,
    ids,
    seed_data,
    server_failure,
    subscriptions,
)
from tests.examples import collect
from tests.faults.harness import Database, Server, client, figure, fresh_database
from tests.subscribers import multipart, subscribed, ws_client

VALID = 7_000
INVALID = 3_000
SENDERS = 8
SEED = 20261201


async def fuzzed_database(
    pg: Database, name: str, product_code: str
) -> tuple[str, dict[Role, str], dict[str, Any]]:
    """A fresh database with a key per role and some data; the scalars' strategies, ids drawn
    from that data among others."""
    url, keys = await fresh_database(pg, name)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        existing = await seed_data(engine, product_code=product_code)
    finally:
        await engine.dispose()
    scalars = {"Decimal": decimals(), "Date": dates(), "DateTime": datetimes(), "ID": ids(existing)}
    return url, keys, scalars


async def test_ten_thousand_generated_operations_never_fail_the_server(pg: Database):
    url, keys, scalars = await fuzzed_database(pg, "faults_fuzz", "FUZZ-USD")
    chosen = os.environ.get("FAULTS_SEED", str(SEED))
    seed = random.randrange(1 << 30) if chosen == "random" else int(chosen)
    began = time.monotonic()
    operations = [
        *collect(from_schema(SDL, custom_scalars=scalars), VALID, seed_value=seed),
        *collect(from_schema(SDL, custom_scalars=scalars, mode=Mode.NEGATIVE), INVALID, seed + 1),
    ]
    generated = time.monotonic() - began

    server = Server(url)
    await server.start()
    roles = list(STAFF_ROLES)
    codes: Counter[str] = Counter()
    failures: list[str] = []

    async def send(share: list[tuple[int, str]]) -> None:
        clients = {role: client(server.base, keys[role], connections=1) for role in roles}
        try:
            for n, operation in share:
                role = roles[n % len(roles)]
                try:
                    response = await clients[role].post("/graphql", json={"query": operation})
                except httpx.TimeoutException:
                    failures.append(f"{role.value}: {operation}\n→ no answer in time")
                    continue
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


SUBSCRIPTIONS = 300  # generated subscription documents, two in three valid


async def test_generated_subscriptions_over_every_transport_never_fail_the_server(pg: Database):
    """Each generated subscription is sent over plain HTTP (POST, GET: refused cleanly), as a
    multipart/mixed stream and over a WebSocket (gql), while applications are submitted: no
    answer, part or message may be a server failure."""
    url, keys, scalars = await fuzzed_database(pg, "faults_fuzz_subscriptions", "EVENTS-USD")
    valid = SUBSCRIPTIONS * 2 // 3
    documents = [
        *collect(subscriptions(scalars), valid, seed_value=SEED + 2),
        *collect(subscriptions(scalars, Mode.NEGATIVE), SUBSCRIPTIONS - valid, SEED + 3),
    ]
    server = Server(url)
    await server.start()
    failures: list[str] = []
    heard = Counter[str]()
    roles = list(STAFF_ROLES)

    def check(transport: str, document: str, body: Any) -> None:
        errors = (body or {}).get("errors") or [] if isinstance(body, dict) else []
        payload = (body or {}).get("payload") if isinstance(body, dict) else None
        errors += (payload or {}).get("errors") or []
        codes = [(e.get("extensions") or {}).get("code") for e in errors]
        heard.update(f"{transport}:{code}" for code in codes or ["ok"])
        if "INTERNAL_SERVER_ERROR" in codes:
            failures.append(f"{transport}: {document}\n→ {body}")

    async def send(share: list[tuple[int, str]]) -> None:
        for n, document in share:
            key = keys[roles[n % len(roles)]]
            async with client(server.base, key) as http:
                for method in ("POST", "GET"):
                    if method == "POST":
                        response = await http.post("/graphql", json={"query": document})
                    else:
                        response = await http.get("/graphql", params={"query": document})
                    if response.status_code >= 500:
                        failures.append(f"{method}: {document}\n→ {response.status_code}")
                    check(method, document, response.json())
                async with multipart(http, document, settle=0) as stream:
                    if stream.response.status_code >= 500:
                        failures.append(f"multipart: {document}\n→ {stream.response.status_code}")
                    elif stream.response.status_code == 200:
                        with contextlib.suppress(TimeoutError):
                            check("multipart", document, await stream.next(0.3))
            async with subscribed(ws_client(server.port, key), document, settle=0) as events:
                try:
                    result = await events.next(0.3)
                    check("ws", document, {"errors": result.errors} if result.errors else {})
                except TransportQueryError as refused:  # an `error` message: a refusal
                    check("ws", document, {"errors": refused.errors or []})
                except (TimeoutError, GraphQLError):  # listening, or gql refused to send it
                    pass

    async def submit() -> None:  # events for the subscriptions listening meanwhile
        async with client(server.base, keys[Role.ADMIN]) as http:
            for n in range(1000):
                await http.post("/graphql", json={"query": FUZZ_APPLY % n})
                await asyncio.sleep(0.2)

    began = time.monotonic()
    numbered = list(enumerate(documents))
    submitter = asyncio.create_task(submit())
    try:
        await asyncio.gather(*(send(numbered[i::SENDERS]) for i in range(SENDERS)))
    finally:
        submitter.cancel()
        await asyncio.gather(submitter, return_exceptions=True)
        log = await server.stop()
    figure(
        "fuzz",
        f"{len(documents)} subscriptions over POST, GET, multipart and WebSocket in "
        f"{time.monotonic() - began:.0f} s: {dict(heard.most_common(8))}",
    )
    assert failures == [], "\n\n".join(failures[:5])
    assert "Traceback" not in log, log[-3000:]


FUZZ_APPLY = """mutation { applyForLoan(input: {applicant: {fullName: "Fuzz Events",
  email: "fuzz-events-%d@example.com"}, productCode: "PERSONAL-USD", amount: "5000",
  termMonths: 12}) { userErrors { code } } }"""
