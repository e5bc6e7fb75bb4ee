"""Where the milliseconds of one read request go, measured in-process with pyinstrument.

    python -m bench.profile --database-url URL [--requests 100] [--workload R1|R2]
        [--compiled on|off]

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
from typing import Any

import httpx
from pyinstrument import Profiler

from bench import queries
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


def layer_of(path: str) -> str:
    for name, needles in LAYERS:
        if any(needle in path for needle in needles):
            return name
    return "other (python runtime, dataclasses, decimal…)"


def attribute(frame: Any, totals: dict[str, float], caller: str = "") -> None:
    """Add each frame's own time to its layer; built-ins and [self] count for their caller."""
    path = frame.file_path
    if not path or path.startswith("<"):
        path = caller
    own = frame.time - sum(child.time for child in frame.children)
    layer = layer_of(path)
    totals[layer] = totals.get(layer, 0.0) + own
    for child in frame.children:
        attribute(child, totals, path)


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
        for _ in range(20):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--workload", choices=["R1", "R2"], default="R2")
    parser.add_argument("--compiled", choices=["on", "off"], default="on")
    args = parser.parse_args()
    found = profile(args.database_url, args.requests, args.workload, args.compiled == "on")
    sys.stdout.write(json.dumps(asyncio.run(found)) + "\n")


if __name__ == "__main__":
    main()
