"""Logging: text for people, or one JSON object a line for machines (LOG_FORMAT=json).

Whatever the format, no log line carries an API key, an email address or an amount: messages
and tracebacks are scrubbed of them (statements' values are already hidden by the engine), so
that logs can be shipped where personal and financial data may not go. Structured fields (a
request's duration, its statement count) are the service's own numbers and are kept.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

# What must never reach a log line, and what stands in for it.
_SCRUB = (
    (re.compile(r"lnd_[A-Za-z0-9_-]+"), "lnd_…"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "<email>"),
    (re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?:[eE][-+]?\d+)?(?![\w.])"), "<number>"),
    # PostgreSQL's "Key (column)=(value)" details.
    (re.compile(r"(?<=\)=\()[^)]*(?=\))"), "<value>"),
)

# Attributes every LogRecord has: anything else was passed with ``extra=`` (structured fields).
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's message with terminal colours
}


def scrub(text: str) -> str:
    """``text`` without keys, emails and amounts."""
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields given to a log call with ``extra=``."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value …``, scrubbed."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = scrub(super().format(record))
        extra = " ".join(f"{k}={v}" for k, v in fields(record).items() if v is not None)
        return f"{line} {extra}" if extra else line


class JSONFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, fields, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        entry.update((k, v) for k, v in fields(record).items() if v is not None)
        if record.exc_info:
            entry["traceback"] = scrub(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure(level: str, format: str) -> None:
    """Log to stderr at ``level`` in ``format`` (text or json), for this process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if format == "json" else TextFormatter())
    # Records need no caller, thread or process names (no format shows them): not looking
    # them up is the logging module's own advice for a hot path (a request line each request).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    # Uvicorn's own loggers go through the same handler (its access log is off in json:
    # the service's request line says more).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
