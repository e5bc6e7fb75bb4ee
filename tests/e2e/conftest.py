"""The browser tests (`make e2e`): Debian's Chromium, headless, against `lending serve --demo`.

Not part of `make test`: they need /usr/bin/chromium and GraphiQL's assets, which `make e2e`
installs. Everything runs on 127.0.0.1 and is stopped at the end: a PostgreSQL of the suite's
own, the demo server, two page servers (two more origins: one allowed by CORS_ORIGINS, one not)
and the browser, whose every wait is bounded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, Route, async_playwright

from db.embedded import EmbeddedPostgres, recreate_database
from lending.access import Role, demo_key
from tests.servers import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
PAGES = Path(__file__).resolve().parent / "pages"
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags, a closed network makes Chromium wait on refusals.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000  # the longest any browser step may take


@dataclass(frozen=True)
class Demo:
    """The demo server, and the origins of the two page servers."""

    url: str
    allowed_origin: str
    other_origin: str
    database_url: str = ""


class QuietPages(SimpleHTTPRequestHandler):
    """Serves tests/e2e/pages, without a log line per request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def origins() -> Iterator[tuple[str, str]]:
    """Two page servers on their own ports, hence two origins (allowed, other)."""
    servers = [
        ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietPages, directory=str(PAGES)))
        for _ in range(2)
    ]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        allowed, other = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
        yield allowed, other
    finally:
        for server, thread in zip(servers, threads, strict=True):
            server.shutdown()
            server.server_close()
            thread.join(5)


@pytest.fixture(scope="session")
async def demo(
    tmp_path_factory: pytest.TempPathFactory, origins: tuple[str, str]
) -> AsyncIterator[Demo]:
    """`lending serve --demo` on a free port, on a database of its own, letting in the allowed
    origin's pages."""
    work = tmp_path_factory.mktemp("e2e")
    postgres = EmbeddedPostgres(work / "pg")
    try:
        url = await recreate_database(postgres.start(), "lending_e2e")
        port = free_port()
        log = (work / "server.log").open("wb")
        command = [sys.executable, "-m", "graph.cli", "serve", "--demo", "--port", str(port)]
        env = {
            "DATABASE_URL": url,
            "PG_DATA_DIR": str(work / "pg"),  # the demo's token keys go beside it, not in ROOT
            "HOST": "127.0.0.1",
            "CORS_ORIGINS": origins[0],
            "GRAPHIQL_ASSETS": str(ROOT / ".graphiql"),
            "LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(  # noqa: ASYNC220 - the server in its own process, by design
            command,
            cwd=ROOT,
            env=os.environ | env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                await wait_ready(port, tries=600)
            except AssertionError:
                raise AssertionError((work / "server.log").read_text()[-3000:]) from None
            yield Demo(f"http://127.0.0.1:{port}", *origins, database_url=url)
        finally:
            stop(server)
            log.close()
    finally:
        postgres.stop()


@pytest.fixture(scope="session")
async def without_assets(
    demo: Demo, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A second server on the demo's database whose GraphiQL has no local copy of its scripts
    (so its page names the CDN); its URL."""
    work = tmp_path_factory.mktemp("no-assets")
    port = free_port()
    env = {
        "DATABASE_URL": demo.database_url,
        "HOST": "127.0.0.1",
        "GRAPHIQL_ASSETS": str(work / "absent"),
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(  # noqa: ASYNC220 - the server in its own process, by design
        [sys.executable, "-m", "graph.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=os.environ | env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_ready(port, tries=300)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it is still there after 15 seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="session")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BrowserContext]:
    """Headless Chromium with a fresh profile."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1440, "height": 900},
            timeout=WAIT_MS,
        )
        context.set_default_timeout(WAIT_MS)
        try:
            yield context
        finally:
            await context.close()


async def only_from(page: Page, origin: str) -> list[str]:
    """Let ``page`` load nothing but from ``origin`` (no CDN, nothing else); the list fills
    with the URLs it was refused."""
    refused: list[str] = []

    async def this_server_only(route: Route) -> None:
        if route.request.url.startswith(origin + "/"):
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort()

    await page.route("**/*", this_server_only)
    return refused


async def ask(demo: Demo, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The data of the demo server's answer to ``query``, as ADMIN, after checking it has no
    errors."""
    async with httpx.AsyncClient(timeout=20) as client:
        response = await client.post(
            f"{demo.url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {demo_key(Role.ADMIN)}"},
        )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body["data"]
