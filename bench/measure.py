"""Process-level measurements: CPU time of a process tree, peak memory, SQL statements run."""

from __future__ import annotations

import os
import re
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name may contain spaces: fields start after the closing parenthesis.
    return text[text.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(root_pids: list[int]) -> float:
    """User plus system CPU time of the given processes and their descendants, live or ended."""
    total = 0
    for root in root_pids:
        for pid in descendants(root):
            fields = _stat(pid)
            if fields:
                # utime, stime, and cutime, cstime: what its exited children used (a server
                # closing overflow connections ends PostgreSQL backends mid-measurement).
                total += sum(int(value) for value in fields[11:15])
    return total / _CLOCK_TICKS


def peak_rss_mb(root_pids: list[int]) -> float:
    """Sum of the processes' peak resident memory (VmHWM), in MiB."""
    total_kb = 0
    for root in root_pids:
        for pid in descendants(root):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            if match:
                total_kb += int(match.group(1))
    return total_kb / 1024


def postmaster_pid(data_dir: Path) -> int:
    """The PostgreSQL server's main process."""
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


_STATEMENT = re.compile(rb"LOG:  (statement|execute [^:]*):")


# Not a request's work: transaction control, what a connection runs once when it opens (the
# driver's and SQLAlchemy's set-up, asyncpg's type introspection with JIT off, a LISTEN), and
# the harness's own switching of the log. A window that opens a connection would otherwise be
# charged with it, and a short window (a slow machine) would show more per request.
_NOT_COUNTED = re.compile(
    rb"\s*(BEGIN|COMMIT|ROLLBACK|LISTEN|ALTER SYSTEM|SELECT pg_reload_conf\(\)"
    rb"|select pg_catalog\.version\(\)|select current_schema"
    rb"|show transaction isolation level|show standard_conforming_strings"
    rb"|WITH RECURSIVE typeinfo_tree|SELECT\s+current_setting\('jit'\)|SELECT\s+set_config\('jit')"
)


def count_statements(log_file: Path, since_offset: int) -> int:
    """Statements PostgreSQL logged (log_statement = all) after ``since_offset`` bytes."""
    with log_file.open("rb") as handle:
        handle.seek(since_offset)
        data = handle.read()
    return sum(
        1
        for match in _STATEMENT.finditer(data)
        if not _NOT_COUNTED.match(data[match.end() : match.end() + 120])
    )
