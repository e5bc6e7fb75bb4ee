"""An embedded PostgreSQL in a local folder, for the demo and the tests."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from db.session import raw_connection

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server living in ``data_dir``; pgserver first, the system's binaries second."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._handle: Any = None
        self._url: str | None = None
        self._system_ctl: Path | None = None

    @property
    def url(self) -> str:
        """The server's URL (a Unix socket: nothing listens on the network)."""
        assert self._url is not None, "server not started"
        return self._url

    def start(self) -> str:
        """Start (or reuse) the server and return its URL."""
        # pgserver asks platformdirs for a runtime dir; its fallback warning is noise here.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        try:
            import pgserver
        except ImportError:  # no wheel for this platform: use the system's initdb / pg_ctl
            return self._start_system()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode="stop": the server stops when the last process using it exits.
        self._handle = pgserver.get_server(  # type: ignore[attr-defined]
            self.data_dir, cleanup_mode="stop"
        )
        # Runs before pgserver's own exit handler (registered just now): see ``stop``.
        atexit.register(self.stop)
        uri: str = self._handle.get_uri()
        self._url = uri
        log.info("embedded PostgreSQL at %s", self.data_dir)
        return uri

    def _start_system(self) -> str:
        initdb = shutil.which("initdb") or _pg_bin("initdb")
        pg_ctl = shutil.which("pg_ctl") or _pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError(
                "No embedded PostgreSQL: install the 'pgserver' package or PostgreSQL's "
                "initdb/pg_ctl, or set DATABASE_URL."
            )
        if os.geteuid() == 0:
            raise RuntimeError(
                "The system PostgreSQL fallback cannot run as root; set DATABASE_URL."
            )
        # Unix socket paths are limited to ~107 bytes, so the socket lives in a short temp dir.
        socket_dir = Path(tempfile.gettempdir()) / f"lending-pg-{os.getuid()}"
        socket_dir.mkdir(mode=0o700, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [initdb, "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        status = subprocess.run([pg_ctl, "-D", str(self.data_dir), "status"], check=False)
        if status.returncode != 0:
            subprocess.run(
                [
                    pg_ctl,
                    "-D",
                    str(self.data_dir),
                    "-w",
                    "-l",
                    str(self.data_dir / "server.log"),
                    "-o",
                    f"-h '' -k {socket_dir}",
                    "start",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            self._system_ctl = Path(pg_ctl)
        self._url = f"postgresql://postgres@/postgres?host={socket_dir}"
        return self._url

    def interrupt(self) -> None:
        """Stop the server as a restart or a failover does: a fast shutdown that disconnects
        every client. ``resume`` starts it again at the same URL (used by the fault tests)."""
        if self._handle is not None:
            from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

            pg_ctl(
                ["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self._handle.system_user
            )
        else:
            assert self._system_ctl is not None, "server not started here"
            subprocess.run(
                [str(self._system_ctl), "-D", str(self.data_dir), "-w", "-m", "fast", "stop"],
                check=True,
                stdout=subprocess.DEVNULL,
            )

    def resume(self) -> None:
        """Start the server again after ``interrupt``; returns once it accepts connections."""
        if self._handle is not None:
            with self._handle._lock:
                self._handle.ensure_postgres_running()
        else:
            self._system_ctl = None
            self._start_system()

    def stop(self) -> None:
        """Stop the server if this process is the last one using it.

        pgserver counts its users in a list of process ids beside the data; a process killed
        with -9 never takes itself off it, and the server would then outlive every process
        that is left. So the ids of processes that are gone are dropped first.
        """
        if self._handle is not None:
            with self._handle._lock:
                forget_gone_users(self._handle.global_process_id_list)
            self._handle.cleanup()
            self._handle = None
        elif self._system_ctl is not None:
            subprocess.run(
                [str(self._system_ctl), "-D", str(self.data_dir), "-m", "fast", "stop"],
                check=False,
                stdout=subprocess.DEVNULL,
            )
            self._system_ctl = None


def postgres_binary(name: str) -> str | None:
    """A PostgreSQL program (``pg_basebackup``, ``postgres`` …) of the version the embedded
    server runs: pgserver's own, else the system's."""
    try:
        import pgserver
    except ImportError:
        return shutil.which(name) or _pg_bin(name)
    found = Path(pgserver.__file__).parent / "pginstall" / "bin" / name
    return str(found) if found.exists() else None


def forget_gone_users(users: Any) -> list[int]:
    """Drop from pgserver's list of users (a DiskList of pids) the processes that are gone;
    the ids left."""
    import psutil  # pgserver's own dependency

    def alive(pid: int) -> bool:
        try:
            return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    pids = users.get()
    left = [pid for pid in pids if pid == os.getpid() or alive(pid)]
    if left != pids:
        log.info(
            "embedded PostgreSQL: forgetting processes that are gone: %s", set(pids) - set(left)
        )
        users.put(left)
    return left


def _pg_bin(name: str) -> str | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def ensure_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server if it does not exist; return its URL."""
    connection = await admin_connection(server_url)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return with_database(server_url, name)


async def recreate_database(server_url: str, name: str) -> str:
    """Drop database ``name`` (connections and all) and create it empty; return its URL."""
    connection = await admin_connection(server_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return with_database(server_url, name)


async def admin_connection(server_url: str) -> Any:
    """A plain asyncpg connection to the server's maintenance database."""
    return await raw_connection(server_url)
