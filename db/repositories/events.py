"""Loan events announced through PostgreSQL, so every server process hears every change."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "lending_events"


async def notify(session: AsyncSession, payload: dict[str, Any]) -> None:
    """Queue a notification; PostgreSQL delivers it only if the transaction commits."""
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": CHANNEL, "payload": json.dumps(payload, separators=(",", ":"))},
    )
