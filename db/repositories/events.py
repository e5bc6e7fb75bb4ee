"""Loan events announced through PostgreSQL, so every server process hears every change."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

CHANNEL = "lending_events"


def announcing(parameter: int) -> str:
    """A SELECT that queues one notification per element of parameter ``$parameter`` (a
    text array, see ``announcements``), in order; it yields how many.

    PostgreSQL delivers them only if the transaction commits. A SELECT rather than a statement
    of its own, so that the write being announced can carry it (as a WITH clause's main query).
    """
    return (
        f"SELECT count(pg_notify('{CHANNEL}', n.payload)) "
        f"FROM unnest(${parameter}::text[]) AS n(payload)"
    )


def announcements(payloads: Sequence[dict[str, Any]]) -> list[str]:
    """The parameter of ``announcing``: each payload as compact JSON."""
    return [json.dumps(p, separators=(",", ":")) for p in payloads]
