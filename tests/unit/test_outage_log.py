"""An outage is the database away; a request that ran out of time or waited too long for a lock
is one request giving up, and is logged as that, not as the database going down."""

from __future__ import annotations

import logging

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from db.errors import LOCKED, SLOW_STATEMENT, Outage, unavailable


@pytest.mark.parametrize("reason", [LOCKED, SLOW_STATEMENT])
def test_a_request_giving_up_is_not_an_outage(
    reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    outage = Outage()
    with caplog.at_level(logging.WARNING, logger="lending.database"):
        outage.noticed(reason)
        outage.recovered()
    assert not outage.ongoing
    assert [r.getMessage() for r in caplog.records] == [
        f"a request gave up: {reason} (answered 503, retryable)"
    ]


def test_an_outage_is_warned_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage()
    with caplog.at_level(logging.WARNING, logger="lending.database"):
        outage.noticed("the database cannot be reached")
        outage.noticed("the database cannot be reached")
        assert outage.ongoing
        outage.recovered()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == (
        "database unavailable (the database cannot be reached); answering 503 until it is back"
    )
    assert len(messages) == 2
    assert messages[1].startswith("database available again after")
    assert not outage.ongoing


def test_a_connection_confused_by_a_server_shutting_down_is_a_lost_connection() -> None:
    """Seen once in the fault suite: PostgreSQL's goodbye reached a connection as a mutation
    began its transaction, and the error was logged as an unexpected fault."""
    confused = asyncpg.InternalClientError(
        "cannot switch to state 15; another operation (2) is in progress"
    )
    translated = DBAPIError("BEGIN", None, confused)
    translated.__cause__ = confused
    assert unavailable(translated) == "the connection to the database was lost"
