"""Where the milliseconds of one read request go, measured in-process with pyinstrument.

    python -m bench.profile --database-url URL [--requests 100] [--workload R1|R2|W1|ALL]
        [--compiled on|off] [--writes-database-url URL]

``--workload ALL`` runs every profile of a benchmark run in one process (``profile_all``).
With ``--workload W1``, each of W1's four mutations (apply, decide, disburse, pay) is profiled
on its own over ``--requests`` sequences, with the write path's parts told apart (the ORM's
unit of work, audit hashing, rules, payload resolution …); one JSON line per mutation.

Runs R1 or R2 through the real ASGI app (no network) and attributes every sample's own time to
a layer by the file its frame runs in: GraphQL parsing and validation, GraphQL execution
(graphql-core), Strawberry's field machinery, the compiled read path (plans, binding, the short
path), our resolvers and loaders (graph/, lending/, db/), SQLAlchemy, the asyncpg driver and
socket waits, JSON serialization, and HTTP (Starlette, FastAPI). Prints a JSON object of
milliseconds per request per layer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from pyinstrument import Profiler

from bench import queries, writes
from db.session import raw_connection
from graph.server.app import create_app
from graph.server.settings import Settings

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("graphql parse+validate", ("graphql/language", "graphql/validation")),
    ("graphql execution", ("graphql/execution", "graphql/type", "graphql/pyutils")),
    ("strawberry", ("strawberry/",)),
    (
        "compiled path (plan, bind, short path)",
        ("/graph/compiled/", "/db/reads/"),
    ),
    ("our resolvers+loaders", ("/graph/", "/lending/", "/db/")),
    ("sqlalchemy", ("sqlalchemy/",)),
    ("asyncpg + waiting for PostgreSQL", ("asyncpg/", "asyncio/", "selectors.py", "uvloop")),
    ("json serialization", ("json/",)),
    ("the in-process client (httpx; not in a served request)", ("httpx/",)),
    ("http (starlette/fastapi)", ("starlette/", "fastapi/", "anyio/", "h11")),
]


# A mutation's layers: the same, with the write path's own parts told apart.
WRITE_LAYERS: list[tuple[str, tuple[str, ...]]] = [
    LAYERS[0],
    ("payload resolution (graphql execution, strawberry)", (*LAYERS[1][1], "strawberry/")),
    ("audit hashing (lending.audit)", ("/lending/audit.py",)),
    ("rules and services (lending/)", ("/lending/",)),
    ("mutation runner, inputs, resolvers (graph/)", ("/graph/",)),
    ("repositories (db/)", ("/db/",)),
    ("ORM unit of work (sqlalchemy.orm)", ("sqlalchemy/orm/",)),
    ("sqlalchemy core and engine", ("sqlalchemy/",)),
    *LAYERS[6:],
]


def layer_of(path: str, layers: list[tuple[str, tuple[str, ...]]] = LAYERS) -> str:
    for name, needles in layers:
        if any(needle in path for needle in needles):
            return name
    return "other (python runtime, dataclasses, decimal…)"


def attribute(
    frame: Any,
    totals: dict[str, float],
    caller: str = "",
    layers: list[tuple[str, tuple[str, ...]]] = LAYERS,
) -> None:
    """Add each frame's own time to its layer; built-ins and [self] count for their caller."""
    path = frame.file_path
    if not path or path.startswith("<"):
        path = caller
    own = frame.time - sum(child.time for child in frame.children)
    layer = layer_of(path, layers)
    totals[layer] = totals.get(layer, 0.0) + own
    for child in frame.children:
        attribute(child, totals, path, layers)


async def profile(url: str, requests: int, workload: str, compiled: bool) -> dict[str, Any]:
    settings = Settings(database_url=url, access_log=False, compiled_reads=compiled)
    app = create_app(settings, url)
    if workload == "R1":
        body = {"query": queries.OUR_R1, "variables": {"id": queries.our_id(await _loaned(url))}}
    else:
        body = {"query": queries.OUR_R2, "variables": {"after": None}}
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": "Bearer lnd_bench_admin"}
    async with httpx.AsyncClient(transport=transport, base_url="http://b", headers=headers) as c:
        for _ in range(min(20, requests)):  # warm-up: as many as measured, up to 20
            response = await c.post("/graphql", json=body)
            assert "errors" not in response.json(), response.text[:300]
        profiler = Profiler(interval=0.001, async_mode="disabled")
        began = time.perf_counter()
        profiler.start()
        for _ in range(requests):
            await c.post("/graphql", json=body)
        profiler.stop()
        elapsed = time.perf_counter() - began
    totals: dict[str, float] = {}
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    if root is not None:
        attribute(root, totals)
    per_request = {k: round(v / requests * 1000, 2) for k, v in sorted(totals.items())}
    return {
        "workload": workload,
        "compiled": compiled,
        "requests": requests,
        "ms_per_request": round(elapsed / requests * 1000, 2),
        "layers_ms": per_request,
    }


STEPS = ("apply", "decide", "disburse", "pay")


async def profile_writes(url: str, sequences: int) -> list[dict[str, Any]]:
    """W1's four mutations, one profile each: ``sequences`` sequences in a row through the app,
    each profiler running only around its own kind of mutation."""
    settings = Settings(database_url=url, access_log=False)
    app = create_app(settings, url)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": "Bearer lnd_bench_admin"}
    profilers = {step: Profiler(interval=0.001, async_mode="disabled") for step in STEPS}
    seconds = dict.fromkeys(STEPS, 0.0)

    @contextmanager
    def watched(step: str) -> Iterator[None]:
        began = time.perf_counter()
        profilers[step].start()
        try:
            yield
        finally:
            profilers[step].stop()
            seconds[step] += time.perf_counter() - began

    async with httpx.AsyncClient(transport=transport, base_url="http://b", headers=headers) as c:
        for _ in range(min(5, sequences)):  # warm-up: documents parsed, connections open
            await writes.sequence(c, [])
        for _ in range(sequences):
            await writes.sequence(c, [], watched)
    found = []
    for step, profiler in profilers.items():
        totals: dict[str, float] = {}
        session = profiler.last_session
        root = session.root_frame() if session is not None else None
        if root is not None:
            attribute(root, totals, layers=WRITE_LAYERS)
        found.append(
            {
                "workload": f"W1 {step}",
                "compiled": True,
                "requests": sequences,
                "ms_per_request": round(seconds[step] / sequences * 1000, 2),
                "layers_ms": {k: round(v / sequences * 1000, 2) for k, v in sorted(totals.items())},
            }
        )
    return found


async def _loaned(url: str) -> int:
    """An application with a loan (R1 asks for one)."""
    connection = await raw_connection(url)
    try:
        key: int = await connection.fetchval(
            "SELECT application_id FROM loans WHERE disbursed_on IS NOT NULL ORDER BY id LIMIT 1"
        )
    finally:
        await connection.close()
    return key


# What ``--workload ALL`` profiles, in order: compiled R1 and R2, R2 field by field, then W1.
READ_PROFILES = (("R1", True), ("R2", True), ("R2", False))


def profile_all(url: str, writes_url: str, requests: int) -> list[dict[str, Any]]:
    """Every profile of a benchmark run in one process (the app is imported once): the reads
    on ``url``, W1's mutations on ``writes_url``."""
    found = []
    for workload, compiled in READ_PROFILES:
        # Field by field R2 is ~20 times slower: a tenth of the requests says as much.
        count = requests if compiled else max(requests // 10, 2)
        found.append(asyncio.run(profile(url, count, workload, compiled)))
    return found + asyncio.run(profile_writes(writes_url, max(requests // 2, 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--writes-database-url", help="W1's database with --workload ALL")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--workload", choices=["R1", "R2", "W1", "ALL"], default="R2")
    parser.add_argument("--compiled", choices=["on", "off"], default="on")
    args = parser.parse_args()
    if args.workload in ("W1", "ALL"):  # one JSON line per profile (W1: one per mutation)
        if args.workload == "W1":  # --requests counts sequences
            found = asyncio.run(profile_writes(args.database_url, args.requests))
        else:
            writes = args.writes_database_url or args.database_url
            found = profile_all(args.database_url, writes, args.requests)
        for each in found:
            sys.stdout.write(json.dumps(each) + "\n")
        return
    one = profile(args.database_url, args.requests, args.workload, args.compiled == "on")
    sys.stdout.write(json.dumps(asyncio.run(one)) + "\n")


if __name__ == "__main__":
    main()
