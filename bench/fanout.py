"""Event fan-out: how long after a mutation's answer its event reaches every subscriber.

    python -m bench.fanout --url http://127.0.0.1:8000 --key KEY \\
        [--subscribers 1000] [--events 100] [--warmup-events 3] [--processes 2] [--seconds 120]

Opens ``--subscribers`` WebSocket connections (graphql-transport-ws), spread over
``--processes`` client processes, each subscribed to ``loanEvents`` selecting the
application's status (read as the event is delivered). Then, one at a time, it submits an
application and measures, from the moment the mutation's answer arrived to the moment the
*last* subscriber received the SUBMITTED event (and the median one), how long the fan-out took.
Clocks are ``time.monotonic`` (one clock for every process of the machine). Prints one JSON
summary line; bounded by ``--seconds`` and by a wait of 10 s per event.

The subscribers here are deliberately thin (the websockets library and orjson, no GraphQL
client), so that the client's own work weighs as little as it can on a two-core machine:
protocol conformance is proven in the test suite with gql, graphql-ws and Apollo Client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
import uuid
from typing import Any

import httpx
import orjson
import websockets
from websockets.typing import Subprotocol

SUBSCRIPTION = "subscription Fanout { loanEvents { type applicationId application { status } } }"
APPLY = """mutation($email: String!) { applyForLoan(input: {applicant: {fullName: "Fan Out",
  email: $email}, productCode: "PERSONAL-USD", amount: "5000", termMonths: 12}) {
  application { id } userErrors { code } } }"""
EVENT_WAIT = 10.0


# ---- a client process: many subscribers ------------------------------------------------


async def subscriber(
    url: str, key: str, heard: dict[str, list[float]], ready: asyncio.Event, count: list[int]
) -> None:
    """One connection with one subscription; records when each SUBMITTED arrives."""
    async with websockets.connect(
        url, subprotocols=[Subprotocol("graphql-transport-ws")], max_queue=None, open_timeout=60
    ) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
        await ws.send(orjson.dumps(init).decode())
        assert orjson.loads(await ws.recv())["type"] == "connection_ack"
        message = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}
        await ws.send(orjson.dumps(message).decode())
        count[0] += 1
        if count[0] == count[1]:
            ready.set()
        async for frame in ws:
            found = orjson.loads(frame)
            event = ((found.get("payload") or {}).get("data") or {}).get("loanEvents")
            if event and event["type"] == "SUBMITTED" and event["application"]:
                heard.setdefault(event["applicationId"], []).append(time.monotonic())


async def listen(url: str, key: str, subscribers: int) -> None:
    """The client process: ``subscribers`` connections; says "ready", then one line per event
    once every connection of this process has heard it (or after EVENT_WAIT)."""
    heard: dict[str, list[float]] = {}
    ready = asyncio.Event()
    count = [0, subscribers]
    tasks = []
    for _ in range(subscribers):
        tasks.append(asyncio.create_task(subscriber(url, key, heard, ready, count)))
        await asyncio.sleep(0.002)  # no thundering herd of handshakes
    await ready.wait()
    print("ready", flush=True)
    reported: dict[str, float] = {}
    while True:
        now = time.monotonic()
        for app_id, times in list(heard.items()):
            if app_id in reported:
                continue
            if len(times) >= subscribers or now - times[0] > EVENT_WAIT:
                reported[app_id] = now
                line = {"app": app_id, "times": times, "subscribers": subscribers}
                print(json.dumps(line), flush=True)
        await asyncio.sleep(0.005)


# ---- the driver ----------------------------------------------------------------------------


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    ws_url = args.url.replace("http", "ws", 1) + "/graphql"
    share = [args.subscribers // args.processes] * args.processes
    share[0] += args.subscribers - sum(share)
    children = []
    for count in share:
        command = [
            sys.executable, "-m", "bench.fanout", "--listen", ws_url, "--key", args.key,
            "--subscribers", str(count),
        ]  # fmt: skip
        children.append(
            await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        )
    deadline = time.monotonic() + args.seconds
    latencies_last: list[float] = []
    latencies_median: list[float] = []
    lost = 0
    try:
        for child in children:
            assert child.stdout is not None
            async with asyncio.timeout(max(deadline - time.monotonic(), 1)):
                line = await child.stdout.readline()
            if line.strip() != b"ready":
                raise RuntimeError(f"a client process did not start: {line!r}")
        await asyncio.sleep(1.0)  # every subscription is listening
        headers = {"Authorization": f"Bearer {args.key}"}
        warm = args.warmup_events
        async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=30) as client:
            for _ in range(args.events + args.warmup_events):
                if time.monotonic() > deadline:
                    break
                email = f"fanout-{uuid.uuid4().hex[:12]}@example.com"
                warming = warm > 0
                warm -= 1
                answer = await client.post(
                    "/graphql", json={"query": APPLY, "variables": {"email": email}}
                )
                answered = time.monotonic()
                app_id = answer.json()["data"]["applyForLoan"]["application"]["id"]
                times: list[float] = []
                for child in children:
                    assert child.stdout is not None
                    while True:
                        async with asyncio.timeout(EVENT_WAIT + 5):
                            found = json.loads(await child.stdout.readline())
                        if found["app"] == app_id:
                            times += found["times"]
                            break
                lost += args.subscribers - len(times)
                if times and not warming:
                    latencies_last.append((max(times) - answered) * 1000)
                    latencies_median.append((statistics.median(times) - answered) * 1000)
                await asyncio.sleep(0.2)
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
    return {
        "subscribers": args.subscribers,
        "events": len(latencies_last),
        "lost": lost,
        "last_p50_ms": _quantile(latencies_last, 0.5),
        "last_p99_ms": _quantile(latencies_last, 0.99),
        "last_max_ms": round(max(latencies_last), 1) if latencies_last else None,
        "median_p50_ms": _quantile(latencies_median, 0.5),
    }


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def main(argv: list[str] | None = None) -> None:
    """Command line entry."""
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--url", help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--key", required=True, help="an API key that may read")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument(
        "--warmup-events", type=int, default=3, help="sent first, not measured (plans, caches)"
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="at most, in all")
    parser.add_argument("--listen", help=argparse.SUPPRESS)  # a client process's WebSocket URL
    args = parser.parse_args(argv)
    if args.listen:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(listen(args.listen, args.key, args.subscribers))
        return
    print(json.dumps(asyncio.run(drive(args))), flush=True)


if __name__ == "__main__":
    main()
