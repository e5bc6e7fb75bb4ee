"""The ceiling: R1 and R2 answered by a bare ASGI app, as fast as plain code can answer them.

    python -m bench.ceiling --port 8100 --database-url URL [--workers 1]

No framework and no GraphQL: an asyncpg pool (ten connections, like the lending service's;
asyncpg prepares and caches every statement) and four POST endpoints that return the same
JSON as the `data` of our GraphQL responses, byte for byte the same field names and formats:

- ``/sql/r1`` ``{"id": 7}`` and ``/sql/r2`` ``{"after": [submitted_at_iso, id] | null}``: ONE
  hand-written statement that builds the whole document in PostgreSQL (row_to_json and
  array_agg over lateral subqueries); the text it returns is sent as it is.
- ``/py/r1`` and ``/py/r2``: a few batched plain queries (the applications; their applicants,
  decisions and loans by ids; the loans' instalments by ids) assembled into the document in
  Python. Amounts stay exact strings, never floats.

R2 and R3 are the same request: the first 50 APPROVED applications, newest submission first,
after a keyset position ``(submitted_at, id)`` (R3) or from the start (R2), 51 rows fetched so
the 51st only tells whether a next page exists.

Timestamps are formatted like the lending service's (Python's ``isoformat`` in UTC: six
fractional digits, none when they are all zero) and ``endCursor`` is its opaque cursor, so the
responses' sizes compare fairly.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import inspect
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any

import asyncpg
import uvicorn

try:
    import orjson

    def dumps(value: Any) -> bytes:
        encoded: bytes = orjson.dumps(value)
        return encoded

    loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # the standard library, with the same compact output

    def dumps(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    loads = json.loads


PAGE_SIZE = 50
POOL_SIZE = 10
ORDER = "SUBMITTED_AT:DESC"  # our cursors name the ordering they were made under

# ---- one statement per request -----------------------------------------------------------


def _ts(column: str) -> str:
    """SQL text of a timestamptz exactly as Python's isoformat() renders it in UTC."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"CASE WHEN date_trunc('second', {column}) = {column} "
        f"""THEN to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') """
        f"""ELSE to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') END"""
    )


def _node(a: str) -> str:
    """SQL of one application's JSON (a row of loan_applications aliased ``a``)."""
    return f"""(SELECT row_to_json(n) FROM (SELECT
        {a}.reference,
        {a}.status,
        {a}.amount_requested::text AS "amountRequested",
        {_ts(f"{a}.submitted_at")} AS "submittedAt",
        (SELECT row_to_json(p) FROM (
            SELECT ap.full_name AS "fullName", ap.email
            FROM applicants ap WHERE ap.id = {a}.applicant_id
        ) p) AS applicant,
        (SELECT coalesce(array_to_json(array_agg(row_to_json(dj) ORDER BY d.decided_at, d.id)),
                         '[]'::json)
         FROM decisions d
         CROSS JOIN LATERAL (
            SELECT d.outcome, d.reason, {_ts("d.decided_at")} AS "decidedAt"
         ) dj
         WHERE d.application_id = {a}.id) AS decisions,
        (SELECT row_to_json(lj) FROM loans l CROSS JOIN LATERAL (SELECT
            l.reference,
            l.status,
            l.principal::text AS principal,
            l.annual_interest_rate::text AS "annualInterestRate",
            l.term_months AS "termMonths",
            CASE WHEN l.disbursed_on IS NOT NULL THEN (SELECT row_to_json(s) FROM (
                SELECT coalesce(
                    array_to_json(array_agg(row_to_json(ij) ORDER BY i.number)), '[]'::json
                ) AS installments
                FROM installments i
                CROSS JOIN LATERAL (SELECT
                    i.number,
                    i.due_date AS "dueDate",
                    i.principal_due::text AS "principalDue",
                    i.interest_due::text AS "interestDue",
                    (i.principal_due + i.interest_due)::text AS "totalDue"
                ) ij
                WHERE i.loan_id = l.id
            ) s) END AS schedule
         ) lj
         WHERE l.application_id = {a}.id) AS loan
    ) n)"""


SQL_R1 = f"""SELECT row_to_json(r)::text FROM (
    SELECT (SELECT {_node("a")} FROM loan_applications a WHERE a.id = $1) AS application
) r"""


def _sql_r2(keyset: bool) -> str:
    after = "AND (a.submitted_at, a.id) < ($1::timestamptz, $2::bigint)" if keyset else ""
    cursor_json = f"""'["{ORDER}","' || {_ts("v.submitted_at")} || '",' || v.id || ']'"""
    cursor = f"translate(encode(convert_to({cursor_json}, 'UTF8'), 'base64'), E'+/=\\n', '-_')"
    return f"""WITH page AS (
    SELECT a.* FROM loan_applications a
    WHERE a.status = 'APPROVED' {after}
    ORDER BY a.submitted_at DESC, a.id DESC
    LIMIT {PAGE_SIZE + 1}
), visible AS (
    SELECT * FROM page ORDER BY submitted_at DESC, id DESC LIMIT {PAGE_SIZE}
)
SELECT row_to_json(r)::text FROM (SELECT (SELECT row_to_json(c) FROM (SELECT
    (SELECT coalesce(
        array_to_json(array_agg(row_to_json(e) ORDER BY v.submitted_at DESC, v.id DESC)),
        '[]'::json)
     FROM visible v CROSS JOIN LATERAL (SELECT {_node("v")} AS node) e) AS edges,
    (SELECT row_to_json(pi) FROM (SELECT
        (SELECT {cursor} FROM visible v ORDER BY v.submitted_at, v.id LIMIT 1) AS "endCursor",
        (SELECT count(*) > {PAGE_SIZE} FROM page) AS "hasNextPage"
    ) pi) AS "pageInfo"
) c) AS applications) r"""


SQL_R2_FIRST = _sql_r2(keyset=False)
SQL_R2_AFTER = _sql_r2(keyset=True)


# ---- a few batched queries, assembled in Python ----------------------------------------------

_APPLICATION_COLUMNS = "id, reference, status, amount_requested, submitted_at, applicant_id"
PY_APPLICATION = f"SELECT {_APPLICATION_COLUMNS} FROM loan_applications WHERE id = $1"
PY_PAGE_FIRST = (
    f"SELECT {_APPLICATION_COLUMNS} FROM loan_applications WHERE status = 'APPROVED' "
    f"ORDER BY submitted_at DESC, id DESC LIMIT {PAGE_SIZE + 1}"
)
PY_PAGE_AFTER = (
    f"SELECT {_APPLICATION_COLUMNS} FROM loan_applications WHERE status = 'APPROVED' "
    "AND (submitted_at, id) < ($1, $2) "
    f"ORDER BY submitted_at DESC, id DESC LIMIT {PAGE_SIZE + 1}"
)
PY_APPLICANTS = "SELECT id, full_name, email FROM applicants WHERE id = ANY($1::bigint[])"
PY_DECISIONS = (
    "SELECT application_id, outcome, reason, decided_at FROM decisions "
    "WHERE application_id = ANY($1::bigint[]) ORDER BY application_id, decided_at, id"
)
PY_LOANS = (
    "SELECT id, application_id, reference, status, principal, annual_interest_rate, "
    "term_months, disbursed_on FROM loans WHERE application_id = ANY($1::bigint[])"
)
PY_INSTALLMENTS = (
    "SELECT loan_id, number, due_date, principal_due, interest_due FROM installments "
    "WHERE loan_id = ANY($1::bigint[]) ORDER BY loan_id, number"
)


def cursor_of(submitted_at: datetime, key: int) -> str:
    """Our opaque cursor (graph.relay.encode_cursor under SUBMITTED_AT:DESC), without graph/."""
    raw = json.dumps([ORDER, submitted_at.isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def _nodes(connection: Any, rows: list[Any]) -> list[dict[str, Any]]:
    """The JSON of application rows, their related rows fetched in one query per table."""
    if not rows:
        return []
    application_ids = [r["id"] for r in rows]
    applicant_ids = list({r["applicant_id"] for r in rows})
    applicants = {
        r["id"]: {"fullName": r["full_name"], "email": r["email"]}
        for r in await connection.fetch(PY_APPLICANTS, applicant_ids)
    }
    decisions: dict[int, list[dict[str, Any]]] = {key: [] for key in application_ids}
    for r in await connection.fetch(PY_DECISIONS, application_ids):
        decisions[r["application_id"]].append(
            {
                "outcome": r["outcome"],
                "reason": r["reason"],
                "decidedAt": r["decided_at"].isoformat(),
            }
        )
    loans: dict[int, dict[str, Any]] = {}
    schedules: dict[int, list[dict[str, Any]]] = {}
    for r in await connection.fetch(PY_LOANS, application_ids):
        loan: dict[str, Any] = {
            "reference": r["reference"],
            "status": r["status"],
            "principal": str(r["principal"]),
            "annualInterestRate": str(r["annual_interest_rate"]),
            "termMonths": r["term_months"],
            "schedule": None,
        }
        if r["disbursed_on"] is not None:
            installments: list[dict[str, Any]] = []
            schedules[r["id"]] = installments
            loan["schedule"] = {"installments": installments}
        loans[r["application_id"]] = loan
    if schedules:
        for r in await connection.fetch(PY_INSTALLMENTS, list(schedules)):
            principal, interest = r["principal_due"], r["interest_due"]
            schedules[r["loan_id"]].append(
                {
                    "number": r["number"],
                    "dueDate": r["due_date"].isoformat(),
                    "principalDue": str(principal),
                    "interestDue": str(interest),
                    "totalDue": str(principal + interest),
                }
            )
    return [
        {
            "reference": r["reference"],
            "status": r["status"],
            "amountRequested": str(r["amount_requested"]),
            "submittedAt": r["submitted_at"].isoformat(),
            "applicant": applicants.get(r["applicant_id"]),
            "decisions": decisions[r["id"]],
            "loan": loans.get(r["id"]),
        }
        for r in rows
    ]


# ---- requests ---------------------------------------------------------------------------


class BadRequest(Exception):
    """The request body is not what the endpoint takes."""


def _row_id(body: dict[str, Any]) -> int:
    value = body.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadRequest('expected {"id": <application row id>}')
    try:
        return int(value)
    except ValueError as error:
        raise BadRequest("id must be an integer") from error


def _after(body: dict[str, Any]) -> tuple[datetime, int] | None:
    value = body.get("after")
    if value is None:
        return None
    try:
        submitted_at, key = value
        return datetime.fromisoformat(submitted_at), int(key)
    except (TypeError, ValueError) as error:
        raise BadRequest('expected {"after": [submitted_at_iso, id] | null}') from error


Handler = Callable[[asyncpg.Pool, dict[str, Any]], Awaitable[bytes]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def sql_r1(pool: asyncpg.Pool, body: dict[str, Any]) -> bytes:
    text: str = await pool.fetchval(SQL_R1, _row_id(body))
    return text.encode()


async def sql_r2(pool: asyncpg.Pool, body: dict[str, Any]) -> bytes:
    after = _after(body)
    if after is None:
        text: str = await pool.fetchval(SQL_R2_FIRST)
    else:
        text = await pool.fetchval(SQL_R2_AFTER, *after)
    return text.encode()


async def py_r1(pool: asyncpg.Pool, body: dict[str, Any]) -> bytes:
    key = _row_id(body)
    async with pool.acquire() as connection:
        row = await connection.fetchrow(PY_APPLICATION, key)
        nodes = await _nodes(connection, [row] if row else [])
    return dumps({"application": nodes[0] if nodes else None})


async def py_r2(pool: asyncpg.Pool, body: dict[str, Any]) -> bytes:
    after = _after(body)
    async with pool.acquire() as connection:
        if after is None:
            rows = await connection.fetch(PY_PAGE_FIRST)
        else:
            rows = await connection.fetch(PY_PAGE_AFTER, *after)
        visible = rows[:PAGE_SIZE]
        nodes = await _nodes(connection, visible)
    last = visible[-1] if visible else None
    return dumps(
        {
            "applications": {
                "edges": [{"node": node} for node in nodes],
                "pageInfo": {
                    "endCursor": cursor_of(last["submitted_at"], last["id"]) if last else None,
                    "hasNextPage": len(rows) > PAGE_SIZE,
                },
            }
        }
    )


ROUTES: dict[str, Handler] = {
    "/sql/r1": sql_r1,
    "/sql/r2": sql_r2,
    "/py/r1": py_r1,
    "/py/r2": py_r2,
}


def _connect_url(url: str) -> str:
    """asyncpg takes postgres:// and postgresql:// URLs, Unix sockets as ?host=/dir."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url


async def _keep_as_is(connection: asyncpg.Connection) -> None:
    """Release without asyncpg's reset round trip: requests leave no session state behind."""


# asyncpg >= 0.30 takes `reset`; older versions always send their reset query on release.
_POOL_OPTIONS: dict[str, Any] = (
    {"reset": _keep_as_is} if "reset" in inspect.signature(asyncpg.create_pool).parameters else {}
)


class CeilingApp:
    """The ASGI application. The pool opens at startup (lifespan) or on the first request.

    ``routes`` maps each POST path to its handler; ``name`` is the pool's application_name.
    """

    routes: dict[str, Handler] = ROUTES
    name = "ceiling"

    def __init__(self, database_url: str, pool_size: int = POOL_SIZE) -> None:
        self.database_url = _connect_url(database_url)
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.database_url,
                        min_size=self.pool_size,
                        max_size=self.pool_size,
                        server_settings={"application_name": self.name},
                        **_POOL_OPTIONS,
                    )
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            status, body = await self._answer(scope, receive)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.pool()
                except (OSError, asyncpg.PostgresError) as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        if scope["method"] == "GET" and scope["path"] in ("/", "/health"):
            return 200, b'{"ok":true}'
        handler = self.routes.get(scope["path"])
        if handler is None:
            return 404, b'{"error":"not found"}'
        if scope["method"] != "POST":
            return 405, b'{"error":"POST only"}'
        try:
            body = loads(b"".join(chunks) or b"{}")
            if not isinstance(body, dict):
                raise BadRequest("expected a JSON object")
            return 200, await handler(await self.pool(), body)
        except (BadRequest, ValueError) as error:
            return 400, dumps({"error": str(error)})


def app_from_environment() -> CeilingApp:
    """The app for uvicorn worker processes: the URL comes from CEILING_DATABASE_URL."""
    return CeilingApp(os.environ["CEILING_DATABASE_URL"])


def main(
    argv: list[str] | None = None,
    factory: str = "bench.ceiling:app_from_environment",
    description: str = __doc__.splitlines()[0],
) -> None:
    """Serve the app ``factory`` builds (from CEILING_DATABASE_URL) on 127.0.0.1."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    os.environ["CEILING_DATABASE_URL"] = args.database_url
    uvicorn.run(
        factory,
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
