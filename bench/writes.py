"""W1, the write mix: apply → decide → disburse → record a payment, from concurrent agents.

    python -m bench.writes --url http://127.0.0.1:8000 --concurrency 16 \\
        --sequences 200 --seconds 30 --key lnd_bench_admin

Each agent repeats the four-step sequence with a fresh applicant, an idempotency key on every
step, until the sequence or time budget is spent. Prints one JSON line: sequences, requests,
errors, seconds, sequences_per_s, rps, p50_ms, p99_ms (per request).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import httpx

APPLY = """mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) {
  application { id } userErrors { code message } } }"""
DECIDE = """mutation($input: DecideApplicationInput!) { decideApplication(input: $input) {
  loan { id } userErrors { code message } } }"""
DISBURSE = """mutation($input: DisburseLoanInput!) { disburseLoan(input: $input) {
  loan { id payoffAmount } userErrors { code message } } }"""
PAY = """mutation($input: RecordPaymentInput!) { recordPayment(input: $input) {
  payment { id } userErrors { code message } } }"""


class Failed(Exception):
    """A step answered with errors."""


async def _call(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], latencies: list[float]
) -> dict[str, Any]:
    began = time.perf_counter()
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    latencies.append(time.perf_counter() - began)
    body = response.json()
    payload = next(iter((body.get("data") or {}).values()), None)
    if response.status_code != 200 or body.get("errors") or not payload or payload["userErrors"]:
        raise Failed(json.dumps(body)[:300])
    result: dict[str, Any] = payload
    return result


def _untimed(_: str) -> AbstractContextManager[None]:
    return nullcontext()


async def sequence(
    client: httpx.AsyncClient,
    latencies: list[float],
    each: Callable[[str], AbstractContextManager[None]] = _untimed,
) -> None:
    """One W1 sequence; ``each(step)`` is entered around each step (apply, decide, disburse,
    pay), for a profiler to watch one kind of mutation at a time."""
    tag = uuid.uuid4().hex[:12]
    with each("apply"):
        applied = await _apply(client, tag, latencies)
    with each("decide"):
        decided = await _decide(client, tag, applied["application"]["id"], latencies)
    loan_id = decided["loan"]["id"]
    with each("disburse"):
        await _call(
            client,
            DISBURSE,
            {"input": {"loanId": loan_id, "idempotencyKey": f"{tag}-disburse"}},
            latencies,
        )
    with each("pay"):
        await _call(
            client,
            PAY,
            {"input": {"loanId": loan_id, "amount": "500.00", "idempotencyKey": f"{tag}-pay"}},
            latencies,
        )


async def _apply(client: httpx.AsyncClient, tag: str, latencies: list[float]) -> dict[str, Any]:
    return await _call(
        client,
        APPLY,
        {
            "input": {
                "applicant": {"fullName": f"Bench Agent {tag}", "email": f"w1-{tag}@example.com"},
                "productCode": "PERSONAL-USD",
                "amount": "12000",
                "termMonths": 24,
                "idempotencyKey": f"{tag}-apply",
            }
        },
        latencies,
    )


async def _decide(
    client: httpx.AsyncClient, tag: str, application_id: str, latencies: list[float]
) -> dict[str, Any]:
    return await _call(
        client,
        DECIDE,
        {
            "input": {
                "applicationId": application_id,
                "outcome": "APPROVED",
                "reason": "Automated approval",
                "idempotencyKey": f"{tag}-decide",
            }
        },
        latencies,
    )


async def run(
    url: str, key: str, concurrency: int, sequences: int, seconds: float
) -> dict[str, Any]:
    """Drive the write mix; return throughput and latency figures."""
    latencies: list[float] = []
    errors: list[str] = []
    remaining = [sequences]
    done = [0]
    began = time.perf_counter()
    deadline = began + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=60
    ) as client:

        async def agent() -> None:
            while remaining[0] > 0 and time.perf_counter() < deadline:
                remaining[0] -= 1
                try:
                    await sequence(client, latencies)
                    done[0] += 1
                except Failed as exc:
                    errors.append(str(exc))

        await asyncio.gather(*(agent() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    n = len(ordered)
    return {
        "sequences": done[0],
        "requests": n,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "seconds": round(elapsed, 3),
        "sequences_per_s": round(done[0] / elapsed, 2),
        "rps": round(n / elapsed, 1),
        "p50_ms": round(ordered[n // 2] * 1000, 2) if n else 0.0,
        "p99_ms": round(ordered[min(n - 1, int(n * 0.99))] * 1000, 2) if n else 0.0,
    }


def main() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--sequences", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.key, args.concurrency, args.sequences, args.seconds))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
