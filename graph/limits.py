"""Query limits and production hardening, checked before execution."""

from __future__ import annotations

from typing import Any

from graph.settings import Settings


def limit_extensions(settings: Settings) -> list[Any]:
    """Schema extensions enforcing the configured limits."""
    return []
