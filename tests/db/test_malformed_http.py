"""Every malformed request is a clean 4xx, over real HTTP to a real server: bodies that are not
UTF-8 or not JSON, nested 10,000 deep, holding a 5,000-digit integer, not one object; clients
that go away mid-body or mid-answer. No traceback, no ERROR line, nothing half-written.

Before the checks of graph.server.request_body, the first three were HTTP 500 with an ERROR
traceback (UnicodeDecodeError, RecursionError, ValueError: Exceeds the limit (4300 digits)), and
a bare JSON string body was one too (AttributeError)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from db.session import create_engine
from tests.api.operations import APPLY, apply_input
from tests.servers import Servers, servers

PRODUCTS = b'{"query":"{ loanProducts { code } }"'
DEEP = b"[" * 10_000 + b"]" * 10_000
CASES = {
    "invalid UTF-8": PRODUCTS + b',"x":"\xff"}',
    "variables 10,000 deep": PRODUCTS + b',"variables":{"v":' + DEEP + b"}}",
    "extensions 10,000 deep": PRODUCTS + b',"extensions":{"e":' + DEEP + b"}}",
    "a 5,000-digit integer": PRODUCTS + b',"variables":{"n":' + b"7" * 5000 + b"}}",
    "a JSON string": b'"{ loanProducts { code } }"',
    "a JSON number": b"12",
    "a batch": b"[" + PRODUCTS + b"}]",
    "not JSON": PRODUCTS,
    "empty": b"",
}


@pytest.fixture(scope="module")
async def server(server_url: str, tmp_path_factory) -> AsyncIterator[tuple[Servers, Path]]:
    log = tmp_path_factory.mktemp("malformed") / "server.log"
    async with servers(server_url, "lending_malformed", count=1, log=log) as found:
        yield found, log


def url(found: Servers) -> str:
    return f"http://127.0.0.1:{found.ports[0]}/graphql"


@pytest.mark.parametrize("with_key", [True, False], ids=["with key", "without key"])
@pytest.mark.parametrize("name", list(CASES))
async def test_a_malformed_body_is_a_400_with_a_code(server, name: str, with_key: bool) -> None:
    found, log = server
    headers = {"content-type": "application/json"}
    if with_key:
        headers["authorization"] = f"Bearer {found.key}"
    before = log.stat().st_size
    async with httpx.AsyncClient(timeout=10) as client:
        began = time.monotonic()
        answer = await client.post(url(found), content=CASES[name], headers=headers)
        took = time.monotonic() - began
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/json"
    [error] = answer.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert took < 1.0
    await asyncio.sleep(0.05)
    written = log.read_bytes()[before:].decode(errors="replace")
    assert "Traceback" not in written, written
    assert "ERROR" not in written, written


async def test_the_reasons_say_what_is_wrong(server) -> None:
    found, _ = server
    headers = {"content-type": "application/json", "authorization": f"Bearer {found.key}"}
    reasons = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for name in ("invalid UTF-8", "variables 10,000 deep", "a 5,000-digit integer", "a batch"):
            answer = await client.post(url(found), content=CASES[name], headers=headers)
            reasons[name] = answer.json()["errors"][0]["message"]
    assert reasons == {
        "invalid UTF-8": "The request body is not valid UTF-8.",
        "variables 10,000 deep": "The request body is nested more than 32 levels deep.",
        "a 5,000-digit integer": "A number in the request has more than 308 digits.",
        "a batch": "Batching is not enabled: send one JSON object per request.",
    }


async def test_get_parameters_and_other_content_types_are_refused_alike(server) -> None:
    found, _ = server
    auth = {"authorization": f"Bearer {found.key}"}
    async with httpx.AsyncClient(timeout=10) as client:
        deep = await client.get(
            url(found),
            params={"query": "{ loanProducts { code } }", "variables": "[" * 5000 + "]" * 5000},
            headers=auth,
        )
        listed = await client.get(
            url(found), params={"query": "{ loanProducts { code } }", "variables": "[1]"},
            headers=auth,
        )  # fmt: skip
        form = await client.post(
            url(found), data={"query": "{ loanProducts { code } }"}, headers=auth
        )
        fine = await client.get(
            url(found), params={"query": "{ loanProducts { code } }", "variables": "{}"},
            headers=auth,
        )  # fmt: skip
    assert (deep.status_code, deep.json()["errors"][0]["extensions"]["code"]) == (
        400,
        "BAD_REQUEST",
    )
    assert listed.status_code == 400
    assert form.status_code == 415
    assert form.json()["errors"][0]["message"] == "Send GraphQL requests as application/json."
    assert fine.status_code == 200
    assert fine.json()["data"]["loanProducts"]


def raw_exchange(port: int, head: bytes, body: bytes, read: bool) -> None:
    """Send ``head`` and ``body`` on a socket of its own, then close it (reading nothing
    unless ``read``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(head + body)
        if read:
            connection.recv(65536)


async def test_a_client_that_goes_away_is_not_an_error(server, server_url: str) -> None:
    found, log = server
    before = log.stat().st_size
    apply = json.dumps({"query": APPLY, "variables": {"input": apply_input()}}).encode()

    def head(length: int) -> bytes:
        return (
            f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {found.key}\r\nContent-Length: {length}\r\n\r\n"
        ).encode()

    port = found.ports[0]
    # mid-body: half the declared bytes, then gone
    for _ in range(5):
        await asyncio.to_thread(
            raw_exchange, port, head(len(apply)), apply[: len(apply) // 2], False
        )
    # mid-answer: the whole mutation, then gone before reading a byte
    for _ in range(5):
        await asyncio.to_thread(raw_exchange, port, head(len(apply)), apply, False)
    await asyncio.sleep(1.0)

    # the server answers the next request, and wrote nothing at ERROR
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(
            url(found), json={"query": "{ loanProducts { code } }"},
            headers={"authorization": f"Bearer {found.key}"},
        )  # fmt: skip
    assert answer.status_code == 200
    written = log.read_bytes()[before:].decode(errors="replace")
    assert "Traceback" not in written, written
    assert "ERROR" not in written, written

    # and each mutation happened whole or not at all: every applicant has its application
    engine = create_engine(found.url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            applicants = (
                await connection.execute(text("SELECT count(*) FROM applicants"))
            ).scalar()
            orphans = (
                await connection.execute(
                    text(
                        "SELECT count(*) FROM applicants a WHERE NOT EXISTS "
                        "(SELECT 1 FROM loan_applications l WHERE l.applicant_id = a.id)"
                    )
                )
            ).scalar()
    finally:
        await engine.dispose()
    assert applicants <= 5
    assert orphans == 0
