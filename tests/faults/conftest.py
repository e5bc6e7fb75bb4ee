"""The fault suite (`make faults`): real servers and a real PostgreSQL, killed and starved.

Not part of `make test`: it takes minutes and kills processes. Each phase reports its figures;
they are printed together at the end of the run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.faults.harness import FIGURES, Database

STARTED = time.monotonic()


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """The suite's own PostgreSQL (the tests' shared one is never touched)."""
    database = Database(tmp_path_factory.mktemp("faults") / "pg")
    yield database
    database.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault suite figures")
    phase = None
    for name, text in FIGURES:
        if name != phase:
            terminalreporter.write_line(f"{name}:")
            phase = name
        terminalreporter.write_line(f"  {text}")
    terminalreporter.write_line(f"duration: {time.monotonic() - STARTED:.0f} s")
