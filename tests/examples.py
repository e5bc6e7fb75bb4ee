"""Examples drawn from hypothesis strategies outside of `@given`, the same on every run."""

from __future__ import annotations

from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

T = TypeVar("T")


def collect(strategy: st.SearchStrategy[T], count: int, seed_value: int) -> list[T]:
    """Up to ``count`` examples of ``strategy``, drawn the same way on every run."""
    # `@given` cannot drive a test on the session's event loop (the clients live there), so a
    # synchronous `@given` function only gathers examples, and the async test sends them.
    examples: list[T] = []

    @hypothesis_settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(seed_value)
    @given(strategy)
    def gather(example: Any) -> None:
        examples.append(example)

    gather()
    return examples
