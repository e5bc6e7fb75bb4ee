"""An outage is the database away; a request that ran out of time or waited too long for a lock
is one request giving up, and is logged as that, not as the database going down."""

from __future__ import annotations

import logging

import pytest

from db.errors import LOCKED, SLOW_STATEMENT, Outage


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
