"""A streaming standby of the suite's PostgreSQL, made with pg_basebackup -R: for the replica
tests and the cluster topology."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from db.embedded import postgres_binary
from db.session import connect_arguments, raw_connection
from tests.servers import free_port

RECOVERY = "SELECT pg_is_in_recovery()"


class Standby:
    """A streaming replica of the suite's server, in a folder of its own, run as the user
    that runs the primary (PostgreSQL refuses root), reachable on a Unix socket only."""

    def __init__(self, server_url: str, base: Path, user: str | None) -> None:
        self.server_url = server_url
        self.base = base
        self.data = base / "data"
        self.user = user
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"postgresql://postgres@:{self.port}/{database}?host={self.base}"

    def copy(self) -> None:
        """pg_basebackup -R: the primary's files, and the settings to follow it."""
        primary = connect_arguments(self.server_url)
        command = [
            _binary("pg_basebackup"),
            *("-h", str(primary["host"]), "-p", str(primary["port"] or 5432)),
            *("-U", str(primary["user"]), "-D", str(self.data)),
            *("-R", "-X", "stream", "-c", "fast"),
        ]
        subprocess.run(command, check=True, user=self.user, capture_output=True)

    async def start(self) -> None:
        """Start the standby, and return once it answers as one."""
        command = [
            _binary("postgres"),
            *("-D", str(self.data), "-p", str(self.port), "-k", str(self.base)),
            *("-c", "listen_addresses=", "-c", "fsync=off"),
        ]
        with (self.base / "server.log").open("ab") as log:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - a server of its own, by design
                command, user=self.user, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = await raw_connection(self.url("postgres"))
                try:
                    if await connection.fetchval(RECOVERY):
                        return
                finally:
                    await connection.close()
            except (OSError, asyncpg.PostgresError):
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                log_tail = (self.base / "server.log").read_text()[-2000:]
                raise RuntimeError(f"the standby did not start:\n{log_tail}")
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """kill -9 the standby's every process: its connections die without a word."""
        assert self.process is not None
        group = self.process.pid
        os.killpg(group, signal.SIGKILL)
        self.process.wait()
        self.process = None
        # Its children too must be gone before it starts again (they hold its shared memory).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.01)

    def stop(self) -> None:
        """A fast shutdown (SIGINT), or kill -9 if it takes too long."""
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=10)
            self.process = None
        except subprocess.TimeoutExpired:
            self.kill()


def _binary(name: str) -> str:
    found = postgres_binary(name)
    if found is None:
        pytest.skip(f"no {name} to build a replica with")
    return found


def _server_user(server_url: str) -> str | None:
    """Who runs the primary (its socket's owner), when this process is root; else None."""
    if os.geteuid() != 0:
        return None
    primary = connect_arguments(server_url)
    socket = Path(str(primary["host"])) / f".s.PGSQL.{primary['port'] or 5432}"
    if not socket.exists():
        pytest.skip("the test PostgreSQL is not local: no replica can be copied from it")
    return pwd.getpwuid(socket.stat().st_uid).pw_name


@asynccontextmanager
async def running_standby(server_url: str) -> AsyncIterator[Standby]:
    """A running standby of the suite's server (copied with its databases as they are)."""
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("a replica is copied from the suite's own embedded PostgreSQL")
    user = _server_user(server_url)
    # Short: Unix socket paths are limited to ~107 bytes.
    base = Path(tempfile.mkdtemp(prefix="lending-replica-"))
    if user is not None:
        shutil.chown(base, user)
    server = Standby(server_url, base, user)
    try:
        started = time.monotonic()
        await asyncio.to_thread(server.copy)
        await server.start()
        print(f"standby copied and started in {time.monotonic() - started:.2f} s")
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
