"""PgBouncer in transaction mode in front of a PostgreSQL, as operators run it (for the test
suite and the benchmarks' pooler phase).

Debian's ``pgbouncer`` (``make test`` installs it when missing). It listens on 127.0.0.1 only,
on the port given, and reaches the server where its URL says (a Unix socket, or a host and
port). PgBouncer refuses to run as root: when run by root it runs as the user that owns the
server's socket (who may reach it), as the replica tests run their standby.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from bench.measure import cpu_seconds
from db.session import async_url, connect_arguments

BINARY = "pgbouncer"
POLICY = Path(__file__).resolve().parent.parent / "deploy" / "pgbouncer.ini"


def installed() -> str:
    """The pgbouncer binary (Debian puts it in /usr/sbin, which a user's PATH may lack)."""
    found = shutil.which(BINARY) or shutil.which(BINARY, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise RuntimeError("pgbouncer is not installed: `make test` installs it (Debian package)")
    return found


def socket_owner(server_url: str) -> str | None:
    """Who owns the server's local socket, when this process is root (else None: ourselves)."""
    if os.geteuid() != 0:
        return None
    target = connect_arguments(server_url)
    host = str(target["host"] or "")
    socket = Path(host) / f".s.PGSQL.{target['port'] or 5432}"
    if host.startswith("/") and socket.exists():
        return pwd.getpwuid(socket.stat().st_uid).pw_name
    return "nobody"


class PgBouncer:
    """One PgBouncer process in transaction mode; stopped, started and killed by its PID."""

    def __init__(self, server_url: str, port: int, *, pool_size: int = 10) -> None:
        self.server_url = server_url
        # A folder of its own, outside any the suite keeps private, for a user who is not us.
        self.base = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.port = port
        self.pool_size = pool_size
        self.user = socket_owner(server_url)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.base / "pgbouncer.log"
        self._write_config()

    def _write_config(self) -> None:
        """This instance's file: the committed policy (deploy/pgbouncer.ini, whose last section
        is [pgbouncer]) with where to listen and how big a pool appended to that section, and
        whom to reach."""
        target = connect_arguments(self.server_url)
        user = str(target["user"] or "postgres")
        (self.base / "users.txt").write_text(f'"{user}" ""\n')
        (self.base / "pgbouncer.ini").write_text(
            POLICY.read_text() + "\n;; this instance\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.base / 'users.txt'}\n"
            f"default_pool_size = {self.pool_size}\n"
            f"logfile = {self.log}\n"
            f"pidfile = {self.base / 'pgbouncer.pid'}\n"
            "[databases]\n"
            f"* = host={target['host'] or '127.0.0.1'} port={target['port'] or 5432}\n"
        )
        if self.user is not None:
            owner = pwd.getpwnam(self.user)
            for path in (self.base, *self.base.iterdir()):
                os.chown(path, owner.pw_uid, owner.pw_gid)

    def url(self, database_url: str) -> str:
        """``database_url``'s database and user, through this PgBouncer."""
        parsed = make_url(async_url(database_url))
        return (
            parsed.set(host="127.0.0.1", port=self.port, query={})
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )

    async def start(self) -> None:
        """Start PgBouncer and return once it takes connections."""
        command = [installed(), *(["-u", self.user] if self.user else []), "-q"]
        command.append(str(self.base / "pgbouncer.ini"))
        with (self.base / "stderr.log").open("ab") as errors:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - a server of its own, by design
                command, stdout=errors, stderr=errors, start_new_session=True
            )
        deadline = time.monotonic() + 15
        while True:
            try:
                connection = await asyncpg.connect(
                    host="127.0.0.1",
                    port=self.port,
                    user=connect_arguments(self.server_url)["user"] or "postgres",
                    database="postgres",
                    statement_cache_size=0,
                )
                try:
                    await connection.fetchval("SELECT 1")
                finally:
                    await connection.close()
                return
            except (OSError, asyncpg.PostgresError):
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                logs = (self.log, self.base / "stderr.log")
                tail = "".join(f.read_text()[-2000:] for f in logs if f.exists())
                raise RuntimeError(f"pgbouncer did not start:\n{tail}")
            await asyncio.sleep(0.05)

    def cpu_seconds(self) -> float:
        """CPU time PgBouncer has used so far (0 when not running)."""
        return 0.0 if self.process is None else cpu_seconds([self.process.pid])

    def stop(self) -> None:
        """Stop at once (SIGINT: PgBouncer's immediate shutdown), or kill -9 if slow."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def remove(self) -> None:
        """Stop, and delete its folder."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
