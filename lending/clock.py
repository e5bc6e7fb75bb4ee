"""Today's date as the service sees it: UTC, so every server agrees."""

from __future__ import annotations

from datetime import UTC, date, datetime


def today() -> date:
    """The current date in UTC."""
    return datetime.now(UTC).date()
