"""The progress line the generator keeps on stderr while it loads."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A carriage-return line on stderr: table, rows done / total, rate.

    On a terminal the line is redrawn four times a second; otherwise (a log file) a plain line
    is written every ten seconds and when a stage ends.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.every = 0.25 if self.live else 10.0
        self.started = self.shown = time.perf_counter()
        self.width = 0
        self.line = ""

    def start(self) -> None:
        self.started = self.shown = time.perf_counter()

    def show(
        self,
        table: str,
        done: int,
        total: int,
        extra: str = "",
        force: bool = False,
        rows: int | None = None,
        unit: str = "rows",
    ) -> None:
        """``done`` of ``total``; the rate counts ``rows`` when given (several tables at once)."""
        now = time.perf_counter()
        if not force and now - self.shown < self.every:
            return
        rate = (done if rows is None else rows) / max(now - self.started, 1e-9)
        self.line = f"{table:<20} {done:>11,}/{total:<11,} {rate:>10,.1f} {unit}/s {extra}".rstrip()
        if self.live:
            pad = max(0, self.width - len(self.line))
            self.width = len(self.line)
            self.stream.write("\r" + self.line + " " * pad)
            self.stream.flush()
        elif not force:
            self.stream.write(self.line + "\n")
            self.stream.flush()
        self.shown = now

    def done(self) -> None:
        """End the stage: keep its last line."""
        self.stream.write("\n" if self.live else self.line + "\n")
        self.stream.flush()
        self.width = 0
