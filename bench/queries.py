"""The benchmark's GraphQL documents, for our service and for PostGraphile, and their variables.

Every server is asked for the same data: an application with its applicant, its decisions
(oldest first) and its loan with the booked instalments (by number).

Our service (``OUR_R1``, ``OUR_R2``): the documents of the workloads as a client writes them.
``application(id:)`` takes a global id (``our_id``); ``applications(after:)`` takes our opaque
keyset cursor (``our_cursor``), made under the ordering ``SUBMITTED_AT:DESC``.

PostGraphile v5 (``PG_R1``, ``PG_R2``; amber preset plus simplify-inflection, see
bench/postgraphile/server.mjs) names things after the tables and foreign keys. Aliases give
its response our shape wherever a field maps one to one:

================================  ===========================================================
ours                              PostGraphile
================================  ===========================================================
``application(id: ID!)``          ``application: loanApplication(rowId: BigInt!)``: the row
                                  id; BigInt variables may be JSON numbers or strings
``applications(first, after,``    ``applications: loanApplications(first: 50, after: Cursor,``
``filter: {status: [APPROVED]},`` ``condition: {status: "APPROVED"},``
``orderBy: SUBMITTED_AT DESC)``   ``orderBy: [SUBMITTED_AT_DESC, ROW_ID_DESC])``: status is
                                  a varchar with a CHECK, so a String, not an enum
``applicant``                     ``applicant`` (forward foreign key, simplified name)
``decisions``                     ``decisions: decisionsByApplicationId(orderBy:``
                                  ``[DECIDED_AT_ASC, ROW_ID_ASC]) { nodes {…} }``: a backward
                                  relation is a connection, so the list sits under ``nodes``
``loan``                          ``loan: loanByApplicationId``: backward relation over the
                                  unique ``loans.application_id``, hence a single object
``schedule { installments }``     ``schedule: installments(orderBy: NUMBER_ASC)``
                                  ``{ installments: nodes {…} }``
``totalDue``                      ``totalDue``: not a column; server.mjs adds it as the SQL
                                  expression ``principal_due + interest_due``
================================  ===========================================================

What still differs in PostGraphile's answers: ``decisions`` is ``{"nodes": [...]}`` rather than
a list; ``schedule`` is ``{"installments": []}`` rather than null for a loan not yet disbursed;
``termMonths`` and ``number`` are numbers in both, amounts (BigFloat) are strings in both, with
the column's scale (``"12.500000"``); timestamps always carry six fractional digits and the
database session's offset (``+00:00`` under TimeZone UTC) where ours drop an all-zero fraction.

PostGraphile's cursors are base64 (with padding) of the JSON ``[digest, submitted_at, id]``,
the values as text; ``digest`` is the first ten hex digits of a SHA-256 of the ORDER BY it
compiles. ``pg_cursor_at`` reads the digest from a cursor the running server hands out, so the
harness never depends on how a given version computes it.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from graph.ids import to_global_id
from graph.relay import encode_cursor

# The read workloads, in the order they are measured and reported (R3 is R2 from a cursor).
READS = ("R1", "R2", "R3")

# ---- our service ------------------------------------------------------------------------

_OUR_FIELDS = (
    "reference status amountRequested submittedAt "
    "applicant { fullName email } "
    "decisions { outcome reason decidedAt } "
    "loan { reference status principal annualInterestRate termMonths "
    "schedule { installments { number dueDate principalDue interestDue totalDue } } }"
)

OUR_R1 = f"query R1($id: ID!) {{ application(id: $id) {{ {_OUR_FIELDS} }} }}"

OUR_R2 = (
    "query R2($after: String) { applications(first: 50, after: $after, "
    "filter: {status: [APPROVED]}, orderBy: {field: SUBMITTED_AT, direction: DESC}) "
    f"{{ edges {{ node {{ {_OUR_FIELDS} }} }} pageInfo {{ endCursor hasNextPage }} }} }}"
)

# The collections screen: the first page of instalments 30 or more days past due on a day, with
# their loan; and how many applications are approved (a count over a large filter).
OUR_OVERDUE = (
    "query Overdue($asOf: Date!) { overdueInstallments(asOf: $asOf, minDaysPastDue: 30, "
    "first: 50) { edges { node { number dueDate amountOutstanding daysPastDue(asOf: $asOf) "
    "loan { reference } } } pageInfo { endCursor hasNextPage } } }"
)
OUR_COUNT = "query Count { applications(filter: {status: [APPROVED]}) { totalCount } }"
# The same count, bounded as a list screen shows it ("1,000+").
OUR_COUNT_BOUNDED = (
    "query Count { applications(filter: {status: [APPROVED]}) { totalCount(atMost: 1000) } }"
)

# The back office's first screen: the portfolio on a day, every indicator of every currency.
OUR_PORTFOLIO = (
    "query Portfolio($asOf: Date!) { portfolio(asOf: $asOf) { currency "
    "loansByStatus { status loans } outstandingPrincipal overdueAmount par30 par60 par90 "
    "buckets { bucket loans outstandingPrincipal overdueAmount } disbursed { loans amount } "
    "collected { principal interest } writtenOff { loans amount } } }"
)

# How the decisions of a window turned out, per product and outcome (the generated book carries
# no scores: score bands would make one group).
OUR_DECISION_STATS = (
    "query Decisions($from: Date!, $to: Date!, $asOf: Date!) { decisionStats(from: $from, "
    "to: $to, asOf: $asOf, groupBy: [PRODUCT, OUTCOME]) { product outcome decisions "
    "approvalRate meanScore medianScore disbursed everBad badRate writtenOffRate } }"
)

# R2 as a borrower asks it: their own applications. A staff key names the same rows by the
# borrower's email; a borrower's token sends null and is scoped to their rows by the server.
OUR_R2_OWN = (
    "query R2Own($email: String) { applications(first: 50, "
    "filter: {status: [APPROVED], applicantEmail: $email}, "
    "orderBy: {field: SUBMITTED_AT, direction: DESC}) "
    f"{{ edges {{ node {{ {_OUR_FIELDS} }} }} pageInfo {{ endCursor hasNextPage }} }} }}"
)

# ---- PostGraphile v5 --------------------------------------------------------------------

_PG_FIELDS = (
    "reference status amountRequested submittedAt "
    "applicant { fullName email } "
    "decisions: decisionsByApplicationId(orderBy: [DECIDED_AT_ASC, ROW_ID_ASC]) "
    "{ nodes { outcome reason decidedAt } } "
    "loan: loanByApplicationId { reference status principal annualInterestRate termMonths "
    "schedule: installments(orderBy: NUMBER_ASC) "
    "{ installments: nodes { number dueDate principalDue interestDue totalDue } } }"
)

PG_R1 = f"query R1($id: BigInt!) {{ application: loanApplication(rowId: $id) {{ {_PG_FIELDS} }} }}"

PG_ORDER = "[SUBMITTED_AT_DESC, ROW_ID_DESC]"

PG_R2 = (
    "query R2($after: Cursor) { applications: loanApplications(first: 50, after: $after, "
    f'condition: {{status: "APPROVED"}}, orderBy: {PG_ORDER}) '
    f"{{ edges {{ node {{ {_PG_FIELDS} }} }} pageInfo {{ endCursor hasNextPage }} }} }}"
)

# Any cursor of the R2 ordering: its first element is the digest that ordering's cursors carry.
PG_CURSOR_PROBE = (
    f"query Probe {{ loanApplications(first: 1, orderBy: {PG_ORDER}) {{ edges {{ cursor }} }} }}"
)

# ---- variables -------------------------------------------------------------------------


def _utc(value: datetime | str) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def our_id(row_id: int) -> str:
    """Our global id of the application with primary key ``row_id``."""
    return to_global_id("LoanApplication", row_id)


def our_cursor(submitted_at: datetime, row_id: int) -> str:
    """Our cursor of the keyset position (submitted_at, id), as `applications` hands it out."""
    return encode_cursor("SUBMITTED_AT:DESC", submitted_at, row_id)


def pg_node_id(row_id: int) -> str:
    """PostGraphile's global id (``node(id:)``, ``id`` fields) of an application."""
    raw = json.dumps(["LoanApplication", str(row_id)], separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def pg_cursor(digest: str, submitted_at: datetime | str, row_id: int) -> str:
    """PostGraphile's cursor of the keyset position under the ordering with ``digest``."""
    raw = json.dumps([digest, _utc(submitted_at), str(row_id)], separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def pg_cursor_digest(cursor: str) -> str:
    """The ordering digest inside a PostGraphile cursor."""
    decoded = json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4)))
    if not isinstance(decoded, list) or not decoded or not isinstance(decoded[0], str):
        raise ValueError(f"not a PostGraphile cursor: {cursor!r}")
    return decoded[0]


async def pg_cursor_at(client: Any, url: str, submitted_at: datetime | str, row_id: int) -> str:
    """The cursor to pass PG_R2 as ``after`` to start after (submitted_at, id).

    ``client`` is an ``httpx.AsyncClient``; ``url`` PostGraphile's /graphql endpoint. The
    database must hold at least one application (any status) for the probe to see a cursor.
    """
    response = await client.post(url, json={"query": PG_CURSOR_PROBE})
    response.raise_for_status()
    edges = response.json()["data"]["loanApplications"]["edges"]
    if not edges:
        raise RuntimeError("PostGraphile returned no application to read a cursor from")
    return pg_cursor(pg_cursor_digest(edges[0]["cursor"]), submitted_at, row_id)
