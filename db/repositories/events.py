"""Loan events announced through PostgreSQL, so every server process hears every change."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, Text, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

CHANNEL = "lending_events"


ANNOUNCEMENTS = bindparam("announcements", type_=ARRAY(Text))


def announcing() -> Select[int]:
    """A SELECT that queues one notification per element of the ``announcements`` parameter
    (JSON texts, see ``announcements``), in order; it yields how many.

    PostgreSQL delivers them only if the transaction commits. A SELECT rather than a statement
    of its own, so that the write being announced can carry it (as a WITH clause's main query).
    """
    payload = func.unnest(ANNOUNCEMENTS).table_valued("payload").render_derived()
    return select(func.count(func.pg_notify(CHANNEL, payload.c.payload))).select_from(payload)


def announcements(payloads: Sequence[dict[str, Any]]) -> list[str]:
    """The ``announcements`` parameter of ``announcing()``: each payload as compact JSON."""
    return [json.dumps(p, separators=(",", ":")) for p in payloads]
