"""Schemathesis hooks for the fault suite (loaded with SCHEMATHESIS_HOOKS).

Strategies for our custom scalars, the test suite's own: ``Decimal`` (valid amounts, edge
cases, garbage, and numbers instead of strings), ``Date`` and ``DateTime`` (valid, impossible
and garbage), ``ID`` (global ids of the demo data, listed in FUZZ_IDS, forged and random ones).
A check fails an HTTP 5xx and any answer that reports an INTERNAL_SERVER_ERROR, whatever its
status. FORBIDDEN, UNAUTHENTICATED and every other typed error are expected answers to generated
input (schemathesis's own ``not_a_server_error`` counts every GraphQL error that is not a
validation failure as a server fault, so it is not used).
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from schemathesis.graphql import scalar

from tests.api.test_fuzz import dates, datetimes, decimals, ids

scalar("Decimal", decimals())
scalar("Date", dates())
scalar("DateTime", datetimes())
scalar("ID", ids([i for i in os.environ.get("FUZZ_IDS", "").split(",") if i]))


@schemathesis.check
def no_internal_error(ctx: Any, response: Any, case: Any) -> None:
    """An answer may refuse the request; it may not hide a fault of the server."""
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}: {response.text[:500]}")
    try:
        body = response.json()
    except Exception:
        return
    errors = body.get("errors") if isinstance(body, dict) else None
    codes = [(error.get("extensions") or {}).get("code") for error in errors or []]
    if "INTERNAL_SERVER_ERROR" in codes:
        raise AssertionError(f"INTERNAL_SERVER_ERROR in {response.text[:500]}")
