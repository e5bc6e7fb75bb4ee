"""Hostile callers holding valid keys: 1,000 pathological documents are refused in linear time
while health checks keep answering, and one key flooding heavy queries leaves another key's
light query alone (its share of the process and its budget of cost points hold it back)."""

from __future__ import annotations

import asyncio
import json
import time

from graphql import GraphQLError, parse

from graph.limits import QueryLimits, validation
from graph.schema import build_schema
from lending.access import Role
from tests.faults.harness import (
    Database,
    Server,
    client,
    figure,
    fresh_database,
    load,
    percentile,
    probing_health,
)
from tests.faults.pathological import documents

DOCUMENTS = 1000
SEED = 20261202
FLOOD_CLIENTS = 50
FLOOD_SECONDS = 10.0
# Each application's applicant, decisions and loan with its schedule: a cost of ~260,000 points,
# as the heavy query of the review (its loans are yet to come, so it runs fast: only its cost
# holds it back).
HEAVY = """{ applications(first: 100) { totalCount edges { node {
  reference status amountRequested applicant { email fullName } decisions { outcome reason }
  loan { status schedule { installments { number dueDate totalDue } } } } } } }"""
LIGHT = "{ loanProducts { code } }"
APPLY = """mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) {
  userErrors { code } } }"""


def _ms(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 0.5) * 1000:.1f} ms, p99 {percentile(values, 0.99) * 1000:.1f} "
        f"ms, max {max(values) * 1000:.1f} ms"
    )


def test_validation_of_pathological_documents_takes_linear_time():
    """In the process, as the server runs it: parse (token limit), then validation."""
    schema = build_schema()._schema
    validate = validation(QueryLimits())  # nothing is remembered: each as on first sight
    took: list[float] = []
    refused = 0
    for _, document in documents(SEED, DOCUMENTS):
        try:
            parsed = parse(document, max_tokens=QueryLimits.max_tokens)
        except GraphQLError:
            refused += 1
            continue
        began = time.perf_counter()
        refused += bool(validate(schema, parsed, ()))
        took.append(time.perf_counter() - began)
    figure(
        "hostile",
        f"{DOCUMENTS} pathological documents (seed {SEED}): {refused} refused; validation of "
        f"the {len(took)} that parsed: {_ms(took)}",
    )
    assert len(took) >= DOCUMENTS // 2


async def _send_all(http, bodies: list[dict]) -> tuple[list[float], dict[str, int]]:
    took: list[float] = []
    codes: dict[str, int] = {}
    for body in bodies:
        began = time.monotonic()
        response = await http.post("/graphql", json=body)
        took.append(time.monotonic() - began)
        assert response.status_code in (200, 400, 413), response.text[:300]
        for error in response.json().get("errors") or [{"extensions": {"code": "ok"}}]:
            code = error["extensions"]["code"]
            codes[code] = codes.get(code, 0) + 1
    return took, codes


async def test_pathological_documents_and_a_heavy_flood_leave_others_answered(
    pg: Database, tmp_path
):
    url, keys = await fresh_database(pg, "faults_hostile", budget=None)  # the roles' budgets
    server = Server(url, env={"DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "0"})
    await server.start()
    try:
        async with client(server.base, keys[Role.ADMIN]) as http:
            for n in range(100):
                applicant = {"fullName": f"Flood {n}", "email": f"flood{n}@example.com"}
                variables = {
                    "input": {
                        "applicant": applicant,
                        "productCode": "PERSONAL-USD",
                        "amount": "2500",
                        "termMonths": 12,
                    }
                }
                await http.post("/graphql", json={"query": APPLY, "variables": variables})
            sample = (await http.post("/graphql", json={"query": HEAVY})).json()
            assert "errors" not in sample, sample
            assert sample["extensions"]["cost"]["requestedNodes"] > 250_000
        # 1. the pathological documents, by an AGENT key, while /healthz is probed
        bodies = [{"query": document} for _, document in documents(SEED, DOCUMENTS)]
        async with (
            probing_health(server.base) as health,
            client(server.base, keys[Role.AGENT], timeout=30) as http,
        ):
            took, codes = await _send_all(http, bodies)
        figure("hostile", f"the same {DOCUMENTS} sent by POST: answered in {_ms(took)}")
        figure("hostile", f"their answers: {dict(sorted(codes.items()))}")
        figure("hostile", f"/healthz meanwhile: {len(health)} probes, {_ms(health)}")

        # 2. an AGENT key floods heavy queries; a SERVICER key asks a light one
        flood_bodies = tmp_path / "heavy.jsonl"
        flood_bodies.write_text(json.dumps({"query": HEAVY}) + "\n")
        flood = asyncio.create_task(
            load(server.base, keys[Role.AGENT], flood_bodies, FLOOD_CLIENTS, FLOOD_SECONDS)
        )
        await asyncio.sleep(1.0)
        light: list[float] = []
        bad: list[str] = []
        async with client(server.base, keys[Role.SERVICER]) as http:
            until = time.monotonic() + FLOOD_SECONDS - 2
            while time.monotonic() < until:
                began = time.monotonic()
                response = await http.post("/graphql", json={"query": LIGHT})
                light.append(time.monotonic() - began)
                if response.status_code != 200 or "errors" in response.json():
                    bad.append(f"{response.status_code} {response.text[:200]}")
                await asyncio.sleep(0.05)
        heavy = await flood
    finally:
        log = await server.stop()
    statuses = {int(code): count for code, count in heavy["statuses"].items()}
    figure(
        "hostile",
        f"AGENT flood, {FLOOD_CLIENTS} clients for {FLOOD_SECONDS:.0f} s, none waiting when "
        f"told to: {heavy['requests']} answers {statuses}",
    )
    figure("hostile", f"SERVICER's light query meanwhile: {len(light)} asked, {_ms(light)}")
    figure("hostile", f"light queries not answered: {len(bad)}")
    assert bad == []
    assert set(statuses) <= {200, 429}, statuses
    assert "Traceback" not in log, log[-3000:]
