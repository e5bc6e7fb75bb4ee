"""Loan events announced through PostgreSQL, so every server process hears every change."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, Text, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY

CHANNEL = "lending_events"


def announce(payloads: Sequence[dict[str, Any]]) -> Select[int]:
    """A SELECT that queues one notification per payload, in order; it yields how many.

    PostgreSQL delivers them only if the transaction commits. A SELECT rather than a statement
    of its own, so that the write being announced can carry it (as a WITH clause's main query).
    """
    texts = [json.dumps(p, separators=(",", ":")) for p in payloads]
    payload = func.unnest(literal(texts, ARRAY(Text))).table_valued("payload").render_derived()
    return select(func.count(func.pg_notify(CHANNEL, payload.c.payload))).select_from(payload)
