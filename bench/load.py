"""A small closed-loop HTTP/1.1 load generator, run in its own process.

Each of `concurrency` workers keeps one keep-alive connection and sends the next request as soon
as the previous answer is read, until `requests` are done or `seconds` have passed. Requests are
POSTs of JSON bodies taken round-robin from a file (one JSON document per line), so every worker
asks for different rows. The client is a few dozen lines of asyncio so that it costs far less
CPU per request than the servers it measures.

    python -m bench.load --url http://127.0.0.1:8000/graphql --bodies b.jsonl \\
        --concurrency 16 --requests 2000 --seconds 30 [--header 'Authorization: Bearer …']

Prints one JSON line: requests, errors, statuses, seconds, rps, p50_ms, p99_ms, mean_ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readline()


async def _worker(
    host: str,
    port: int,
    path: str,
    headers: list[str],
    bodies: list[bytes],
    start_index: int,
    deadline: float,
    remaining: list[int],
    latencies: list[float],
    errors: list[str],
    statuses: Counter[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    index = start_index
    head = "".join(f"{h}\r\n" for h in headers)
    try:
        while remaining[0] > 0 and time.perf_counter() < deadline:
            remaining[0] -= 1
            body = bodies[index % len(bodies)]
            index += 1
            request = (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"{head}Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            began = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length, chunked = 0, False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
            payload = await (_read_chunked(reader) if chunked else reader.readexactly(length))
            latencies.append(time.perf_counter() - began)
            status = int(status_line.split()[1])
            statuses[status] += 1
            if status != 200 or b'"errors"' in payload[:200]:
                errors.append(f"{status} {payload[:200]!r}")
    finally:
        writer.close()


async def run(
    url: str,
    bodies: list[bytes],
    concurrency: int,
    requests: int,
    seconds: float,
    headers: list[str],
) -> dict[str, Any]:
    """Drive the server; return throughput and latency figures."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    errors: list[str] = []
    statuses: Counter[int] = Counter()
    remaining = [requests]
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(
        *(
            _worker(
                host,
                port,
                parts.path or "/",
                headers,
                bodies,
                i * 7919,
                deadline,
                remaining,
                latencies,
                errors,
                statuses,
            )
            for i in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    n = len(ordered)
    return {
        "requests": n,
        "errors": len(errors),
        "first_error": errors[0] if errors else "",
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "seconds": round(elapsed, 3),
        "rps": round(n / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(ordered[n // 2] * 1000, 2) if n else 0.0,
        "p99_ms": round(ordered[min(n - 1, int(n * 0.99))] * 1000, 2) if n else 0.0,
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2) if n else 0.0,
    }


def main() -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True, help="file with one JSON body per line")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    with open(args.bodies, "rb") as handle:
        bodies = [line.rstrip(b"\n") for line in handle if line.strip()]
    result = asyncio.run(
        run(args.url, bodies, args.concurrency, args.requests, args.seconds, args.header)
    )
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
