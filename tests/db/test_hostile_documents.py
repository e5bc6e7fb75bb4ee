"""A document whose fragments expand to billions of fields is refused at once on every
transport, and the process keeps answering meanwhile: its shape is measured in one pass, each
fragment once (graph.limits), before any validation rule could expand it."""

from __future__ import annotations

import asyncio
import hashlib
import time

import httpx
import pytest
from gql import gql
from gql.transport.exceptions import TransportQueryError

from tests.servers import servers
from tests.subscribers import multipart, ws_client

LEVELS = 30  # 2**31 fields expanded: minutes of CPU for a limiter that expands fragments


def fragment_bomb(levels: int = LEVELS, operation: str = "query") -> str:
    """Each fragment spreads the next one twice: 1.9 KB, doubling at every level."""
    spreads = [
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} loanProducts {{ code }} }}"
        for i in range(levels)
    ]
    spreads.append(f"fragment F{levels} on Query {{ loanProducts {{ code }} }}")
    return f"{operation} {{ ...F0 }}\n" + "\n".join(spreads)


def _too_complex(errors: list[dict]) -> None:
    assert [e["extensions"]["code"] for e in errors] == ["QUERY_TOO_COMPLEX"], errors
    assert "with its fragments expanded" in errors[0]["message"]


@pytest.fixture
async def server(server_url):
    async with servers(server_url, "lending_hostile", count=1) as running:
        yield running


async def test_a_fragment_bomb_is_refused_at_once_on_every_transport(server):
    port, key = server.ports[0], server.key
    bomb = fragment_bomb()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as http:
        probes: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            while not done.is_set():
                began = time.monotonic()
                assert (await http.get("/healthz")).status_code == 200
                probes.append(time.monotonic() - began)
                await asyncio.sleep(0.02)

        probing = asyncio.create_task(probe())
        try:
            # POST and GET
            posted = await http.post("/graphql", json={"query": bomb})
            _too_complex(posted.json()["errors"])
            got = await http.get("/graphql", params={"query": bomb})
            _too_complex(got.json()["errors"])
            # an automatic persisted query registering it: refused, and not stored
            sha256 = hashlib.sha256(bomb.encode()).hexdigest()
            persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha256}}
            registered = await http.post("/graphql", json={"query": bomb, "extensions": persisted})
            _too_complex(registered.json()["errors"])
            by_hash = await http.post("/graphql", json={"extensions": persisted})
            assert by_hash.json()["errors"][0]["message"] == "PersistedQueryNotFound"
            # a subscription over multipart HTTP
            async with multipart(
                http, fragment_bomb(operation="subscription").replace("on Query", "on Subscription")
            ) as stream:
                part = await stream.next()
                assert part is not None
                print(part)
                _too_complex(part["payload"]["errors"] if "payload" in part else part["errors"])
            # and a subscription over a WebSocket, by gql
            query = fragment_bomb()
            async with ws_client(port, key) as session:
                with pytest.raises(TransportQueryError) as refused:
                    await session.execute(gql(query))
            assert "fragments expanded" in str(refused.value)
        finally:
            done.set()
            await probing
    # the process answered its health checks all along
    assert probes


async def test_a_document_too_long_to_parse_quickly_is_refused_unparsed(server):
    port, key = server.ports[0], server.key
    text = "x" * 60_000  # a literal the parser would read for tens of milliseconds
    long_document = f'{{ applicants(filter: {{ nameContains: "{text}" }}) {{ totalCount }} }}'
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
    ) as http:
        posted = await http.post("/graphql", json={"query": long_document})
        [error] = posted.json()["errors"]
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert "send long values as variables" in error["message"]
    async with ws_client(port, key) as session:
        with pytest.raises(TransportQueryError, match="send long values as variables"):
            await session.execute(gql(long_document))
