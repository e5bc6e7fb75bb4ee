"""The embedded PostgreSQL stops when the last server process using it stops, even after an
earlier one was killed with -9 (which never takes itself off pgserver's list of users).

Before, the killed process's stale pid kept the list non-empty, and the server outlived them all.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import psutil

from tests.servers import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]


def postmaster(data_dir: Path) -> psutil.Process | None:
    """The running postmaster of ``data_dir``, if any."""
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return None
    try:
        process = psutil.Process(int(pid_file.read_text().split()[0]))
        return process if process.status() != psutil.STATUS_ZOMBIE else None
    except (psutil.Error, ValueError, IndexError):
        return None


async def start(data_dir: Path) -> subprocess.Popen[bytes]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    process = subprocess.Popen(  # noqa: ASYNC220 - a server in its own process, by design
        [sys.executable, "-m", "graph.cli", "serve", "--port", str(port)],
        env=env | {"PG_DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await wait_ready(port, tries=600)
    return process


async def test_the_last_server_stops_postgres_even_after_a_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    first = await start(data_dir)
    server = postmaster(data_dir)
    assert server is not None
    try:
        # given a server killed with -9: PostgreSQL keeps running, as it should
        first.kill()
        first.wait(10)
        assert server.is_running()

        # when another server starts on the same data, and stops normally
        second = await start(data_dir)
        assert postmaster(data_dir) is not None
        second.terminate()
        assert await asyncio.to_thread(second.wait, 20) == 0

        # then no PostgreSQL is left running
        gone, _ = await asyncio.to_thread(psutil.wait_procs, [server], 10)
        assert gone, "the embedded PostgreSQL outlived the last server"
    finally:
        if server.is_running():  # only ever ours: its data is in this test's folder
            server.kill()
