"""Comparing two answers to the same request, less what differs between any two sends."""

from __future__ import annotations

import re


def unmetered(body: bytes) -> bytes:
    """A body without what is left of the caller's budget. A caller with a finite budget (a
    borrower's role, or a metered key) is charged once per send, and the budget refills with
    time, so two sends of one request report different amounts left."""
    return re.sub(rb'"currentlyAvailable":[0-9]+', b'"currentlyAvailable":0', body)
