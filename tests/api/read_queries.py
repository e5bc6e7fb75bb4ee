"""Generated read queries: random selections over the schema, with the arguments clients send.

A hypothesis strategy draws whole query documents: one to three root fields, each with a random
selection down the schema (aliases, duplicated fields that merge, inline fragments on the type
or on ``Node``, named fragments, ``@skip``/``@include`` with literals or variables,
``__typename``), and arguments drawn from the data (ids of every type and of the wrong type,
real cursors of every ordering and foreign ones, filters on real emails, names, codes, dates
and amounts) or out of range (``first: 101``, a garbage cursor, a NUL in a filter), or forged
(ids and cursors that decode to values out of range, of the wrong type, nested too deep, or
that spell a real one another way: see ``forged_ids`` and ``forged_cursors``). Pages are
read forward (``first`` / ``after``) or backward (``last`` / ``before``), sometimes between two
cursors, now and then with ``first`` and ``last`` together (refused). Arguments are written
inline or passed as variables, some with defaults.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import timedelta
from random import Random
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from hypothesis import strategies as st
from sqlalchemy import text

from db.session import create_engine
from graph.ids import to_global_id
from graph.relay import encode_cursor

# Root fields the compiled path covers, and one it does not (a mixed operation).
ROOTS = (
    "node",
    "nodes",
    "applicant",
    "applicants",
    "application",
    "applications",
    "loan",
    "loans",
    "loanProducts",
    "overdueInstallments",
    "auditTrail",
)
NODE_TYPES = (
    "Applicant",
    "LoanApplication",
    "LoanProduct",
    "Loan",
    "Decision",
    "Installment",
    "Payment",
    "Reminder",
)
TABLE_OF = {
    "Applicant": "applicants",
    "LoanApplication": "loan_applications",
    "LoanProduct": "loan_products",
    "Loan": "loans",
    "Decision": "decisions",
    "Installment": "installments",
    "Payment": "payments",
    "Reminder": "reminders",
}
# An event's objects, and their types.
EVENT_OBJECTS = (("application", "LoanApplication"), ("loan", "Loan"), ("entity", "Node"))
DECIDERS = ("underwriter.alice", "underwriter.bob", "agent.triage", "admin", "nobody")
SCORES = ("0", "520", "600", "699.99", "750.5", "1000")


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def forged_ids(real: str) -> list[str]:
    """Ids a client may forge: other spellings of ``real``, keys out of range or not ASCII."""
    try:
        type_name = base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)).decode()
    except ValueError:  # not an id: forge an applicant's
        type_name = "Applicant"
    type_name = type_name.partition(":")[0]
    return [
        _b64(f"{type_name}:²"),
        _b64(f"{type_name}:١٠"),
        _b64(f"{type_name}:0"),
        _b64(f"{type_name}:{2**63}"),
        real[:3] + "!" + real[3:],
        f" {real}",
        real + "=",
    ]


def forged_cursors(real: str) -> list[str]:
    """Cursors a client may forge from ``real``: its value or key out of range or of the wrong
    type, nested too deep, or spelt another way."""
    order, value, key = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))

    def made(*parts: object) -> str:
        return _b64(json.dumps(list(parts), separators=(",", ":")))

    return [
        made(order, value, 2**100),
        made(order, str(2**100), key),
        made(order, "9999-12-31T23:59:59.999999-14:00", key),
        made(order, value, True),
        made(order, value, key, 1),
        _b64("[" * 3000),
        _b64(json.dumps([order, value, key])),
        real + "=",
        f"{real[:5]}!{real[5:]}",
    ]


@dataclass
class Pools:
    """Values from the data set that arguments are drawn from."""

    ids: dict[str, list[str]]  # global ids by type name
    cursors: dict[str, list[str]]  # cursors by ordering name
    emails: list[str]
    names: list[str]
    codes: list[str]
    dates: list[str]
    instants: list[str]
    amounts: list[str]


class Literal(str):
    """GraphQL literal text, written as it is (enum values, input objects)."""


def literal(value: Any) -> str:
    """GraphQL literal text of a Python value."""
    if isinstance(value, Literal):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def json_value(value: Any) -> Any:
    """A variable's JSON value (enum literals as their names)."""
    if isinstance(value, Literal):
        return str(value)
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


@dataclass
class _Document:
    random: Random
    schema: GraphQLSchema
    pools: Pools
    count: int = 0
    variables: dict[str, tuple[str, Any, bool]] = field(
        default_factory=dict
    )  # name: type, value, default
    fragments: list[str] = field(default_factory=list)

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def maybe(self, probability: float) -> bool:
        return self.random.random() < probability

    def pick(self, options: Any) -> Any:
        return self.random.choice(list(options))

    def between(self, low: int, high: int) -> int:
        return self.random.randint(low, high)

    # ---- arguments ---------------------------------------------------------------------------

    def argument(self, type_text: str, value: Any) -> str:
        """A value written inline, or passed as a variable (sometimes only as its default)."""
        if self.maybe(0.35):
            name = self.name("v")
            as_default = value is not None and self.maybe(0.3)
            self.variables[name] = (type_text, value, as_default)
            return f"${name}"
        return literal(value)

    def arguments(self, parent: str, field_name: str, depth: int) -> dict[str, str]:
        p = self.pools
        args: dict[str, Any] = {}
        types: dict[str, str] = {}

        def put(name: str, type_text: str, value: Any) -> None:
            args[name] = value
            types[name] = type_text

        if field_name in {"node", "applicant", "application", "loan"}:
            wanted = {"applicant": "Applicant", "application": "LoanApplication", "loan": "Loan"}
            kind = wanted.get(field_name) or self.pick(NODE_TYPES)
            if self.maybe(0.85):
                kind = wanted.get(field_name, kind)
            choice = self.pick(["real", "real", "real", "wrong", "garbage"])
            ids = (p.ids[kind] if choice == "real" else p.ids[self.pick(NODE_TYPES)]) or ["x"]
            value = self.pick(ids)
            if choice == "garbage":
                value = self.pick(["x", "", "TG9hbjo5OTk5OTk", *forged_ids(value)])
            put("id", "ID!", value)
        elif field_name == "nodes":
            size = self.pick([0, 1, 2, 3, 5, 101] if depth == 0 else [0, 1, 2])
            everything = [i for kind in NODE_TYPES for i in p.ids[kind]] + ["nope"]
            if self.maybe(0.1):
                everything += forged_ids(self.pick(everything))
            put("ids", "[ID!]!", [self.pick(everything) for _ in range(size)])
        elif field_name == "auditTrail":
            kind = self.pick(["LoanApplication", "LoanApplication", "Loan", "Loan", "Applicant"])
            value = self.pick(p.ids[kind] or ["x"])
            if self.maybe(0.1):
                value = self.pick(["garbage", *forged_ids(value)])
            put("entityId", "ID!", value)
        elif field_name == "overdueInstallments":
            put("asOf", "Date!", self.pick(p.dates))
            if self.maybe(0.7):
                put("minDaysPastDue", "Int", self.pick([0, 1, 1, 5, 30, 90, -3]))
            if self.maybe(0.3):
                put("notRemindedSince", "Date", self.pick([*p.dates, None]))
        elif field_name == "loanProducts":
            if self.maybe(0.6):
                put("activeOnly", "Boolean", self.pick([True, False]))
        elif field_name in {
            "status",
            "daysPastDue",
            "payoffAmount",
            "delinquency",
            "settlementQuote",
        } and self.maybe(0.8):
            put("asOf", "Date", self.pick([*p.dates, None]))
        if field_name in {
            "applicants",
            "applications",
            "loans",
            "payments",
            "reminders",
            "overdueInstallments",
            "auditTrail",
        } and (field_name != "reminders" or parent == "Loan"):
            backward = self.maybe(0.3)
            sizes = [0, 1, 2, 2, 3, 3, 5, 10, 100, 101, -1, None] if depth == 0 else [0, 1, 2]
            if self.maybe(0.9):
                put("last" if backward else "first", "Int", self.pick(sizes))
            if backward and self.maybe(0.05):
                put("first", "Int", self.pick(sizes))  # with `last`: refused unless null
            if self.maybe(0.2 if backward else 0.35):
                put("after", "String", self.cursor())
            if self.maybe(0.45 if backward else 0.1):
                put("before", "String", self.cursor())
        if field_name == "totalCount" and self.maybe(0.4):
            put("atMost", "Int", self.pick([0, 1, 2, 3, 10, 1000, -1, None]))
        if field_name == "applications" and self.maybe(0.5):
            put("filter", "ApplicationFilterInput", self.application_filter())
        if field_name == "applications" and self.maybe(0.4):
            order: dict[str, Any] = {}
            if self.maybe(0.8):
                order["field"] = Literal(self.pick(["SUBMITTED_AT", "AMOUNT_REQUESTED"]))
            if self.maybe(0.8):
                order["direction"] = Literal(self.pick(["ASC", "DESC"]))
            put("orderBy", "ApplicationOrder", order)
        if field_name == "applicants" and self.maybe(0.5):
            put("filter", "ApplicantFilterInput", self.applicant_filter())
        if field_name == "applicants" and self.maybe(0.3):
            put("orderBy", "ApplicantOrder", {"direction": Literal(self.pick(["ASC", "DESC"]))})
        if field_name == "loans" and self.maybe(0.5):
            put("filter", "LoanFilterInput", self.loan_filter())
        return {name: self.argument(types[name], value) for name, value in args.items()}

    def cursor(self) -> str | None:
        """A real cursor of some ordering (often not the connection's), garbage, a forged one,
        or null."""
        orders = [order for order, found in self.pools.cursors.items() if found]
        if not orders:
            return self.pick(["x", None])
        cursor = self.pick(self.pools.cursors[self.pick(orders)])
        if self.maybe(0.1):
            return self.pick(forged_cursors(cursor))
        return self.pick([cursor, cursor, cursor, "garbage", None])

    def application_filter(self) -> dict[str, Any]:
        p, out = self.pools, {}
        statuses = ["SUBMITTED", "IN_REVIEW", "APPROVED", "REJECTED", "WITHDRAWN"]
        if self.maybe(0.5):
            out["status"] = [Literal(self.pick(statuses)) for _ in range(self.pick([0, 1, 2]))]
        if self.maybe(0.2):
            out["productCode"] = self.pick([*p.codes, "NOPE", "P\u0000"])
        if self.maybe(0.2):
            email = self.pick(p.emails)
            out["applicantEmail"] = self.pick([email, email.upper(), f"  {email} ", "no@x"])
        if self.maybe(0.2):
            out["submittedFrom"] = self.pick(p.instants)
        if self.maybe(0.2):
            out["submittedTo"] = self.pick(p.instants)
        if self.maybe(0.2):
            out["amountMin"] = self.pick(p.amounts)
        if self.maybe(0.2):
            out["amountMax"] = self.pick(p.amounts)
        if self.maybe(0.15):
            out["decidedBy"] = self.pick(DECIDERS)
        if self.maybe(0.15):
            out["scoreMin"] = self.pick(SCORES)
        if self.maybe(0.15):
            out["scoreMax"] = self.pick(SCORES)
        return out

    def applicant_filter(self) -> dict[str, Any]:
        p, out = self.pools, {}
        if self.maybe(0.3):
            email = self.pick(p.emails)
            out["email"] = self.pick([email, email.upper(), "nobody@example.com"])
        if self.maybe(0.4):
            name = self.pick(p.names)
            start = self.between(0, max(0, len(name) - 1))
            part = name[start : start + self.between(0, 4)]
            out["nameContains"] = self.pick([part, part.upper(), "%", "_", "\\", "a\u0000"])
        if self.maybe(0.2):
            out["createdFrom"] = self.pick(p.instants)
        if self.maybe(0.2):
            out["createdTo"] = self.pick(p.instants)
        return out

    def loan_filter(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.maybe(0.5):
            statuses = ["APPROVED", "ACTIVE", "PAID_OFF", "WRITTEN_OFF", "CANCELLED"]
            out["status"] = [Literal(self.pick(statuses)) for _ in range(self.pick([0, 1, 2]))]
        if self.maybe(0.5):
            buckets = ["CURRENT", "DPD_1_30", "DPD_31_60", "DPD_61_90", "DPD_91_PLUS"]
            out["delinquencyBucket"] = [
                Literal(self.pick(buckets)) for _ in range(self.pick([0, 1, 2, 3]))
            ]
        if self.maybe(0.4):
            out["asOf"] = self.pick([*self.pools.dates, None])
        return out

    # ---- selections --------------------------------------------------------------------------

    def directive(self) -> str:
        if not self.maybe(0.08):
            return ""
        which = self.pick(["include", "skip"])
        if self.maybe(0.5):
            condition = self.pick(["true", "false"])
        else:
            name = self.name("flag")
            self.variables[name] = ("Boolean!", self.pick([True, False]), False)
            condition = f"${name}"
        return f" @{which}(if: {condition})"

    def selection(self, type_name: str, depth: int) -> str:
        node_type = self.schema.get_type(type_name)
        assert isinstance(node_type, GraphQLObjectType | GraphQLInterfaceType)
        parts: list[str] = []
        if isinstance(node_type, GraphQLInterfaceType):
            if self.maybe(0.6):
                parts.append("id")
            for concrete in self.random.sample(NODE_TYPES, self.between(0, 3)):
                parts.append(self.fragment(concrete, depth))
            if not parts or self.maybe(0.3):
                parts.append("__typename")
            return "{ " + " ".join(parts) + " }"
        names = sorted(node_type.fields)
        leaves = [n for n in names if _is_leaf(node_type, n)]
        candidates = names if depth < 4 else leaves or names
        chosen = [self.pick(candidates) for _ in range(self.between(1, 3 if depth < 3 else 2))]
        for name in chosen:
            parts.append(self.field(node_type, name, depth))
        if self.maybe(0.15):
            parts.append("__typename")
        if self.maybe(0.1):
            parts.append(self.fragment(type_name, depth))
        if self.maybe(0.08) and "Node" in [i.name for i in node_type.interfaces]:
            parts.append("... on Node { id }")
        return "{ " + " ".join(parts) + " }"

    def fragment(self, type_name: str, depth: int) -> str:
        inner = self.selection(type_name, depth + 1)
        if self.maybe(0.4):
            name = self.name("F")
            self.fragments.append(f"fragment {name} on {type_name} {inner}")
            return f"...{name}"
        return f"... on {type_name} {inner}"

    def field(self, parent: GraphQLObjectType, name: str, depth: int) -> str:
        definition = parent.fields[name]
        named = get_named_type(definition.type)
        args = self.arguments(parent.name, name, depth) if definition.args else {}
        alias = ""
        if args or self.maybe(0.3):
            alias = self.name("a") + ": "
        text = alias + name
        if args:
            text += "(" + ", ".join(f"{k}: {v}" for k, v in args.items()) + ")"
        text += self.directive()
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            if depth >= 5:
                text += " { __typename }"
            else:
                text += " " + self.selection(named.name, depth + 1)
        return text

    def root(self) -> str:
        query = self.schema.query_type
        assert query is not None
        if self.maybe(0.04):
            return self.pick(["__typename", f"{self.name('a')}: __typename"])
        name = self.pick(ROOTS) if not self.maybe(0.03) else "previewSchedule"
        if name == "previewSchedule":
            code = self.pick(self.pools.codes)
            alias = self.name("a")
            return (
                f'{alias}: previewSchedule(input: {{productCode: "{code}", amount: "5000", '
                "termMonths: 12}) { schedule { totalPayable } userErrors { code } }"
            )
        return self.field(query, name, 0)

    def event(self) -> str:
        """``loanEvents`` selecting some of an event's objects, each with a random selection."""
        parts = ["type"] if self.maybe(0.5) else []
        for name, type_name in EVENT_OBJECTS:
            if self.maybe(0.6):
                alias = self.name("a") + ": " if self.maybe(0.2) else ""
                parts.append(f"{alias}{name}{self.directive()} {self.selection(type_name, 1)}")
        if not parts or self.maybe(0.2):
            parts.append("entityId")
        return "loanEvents { " + " ".join(parts) + " }"

    def text(self, roots: list[str], kind: str = "query") -> tuple[str, dict[str, Any]]:
        definitions, values = [], {}
        for name, (type_text, value, as_default) in self.variables.items():
            if as_default:
                definitions.append(f"${name}: {type_text.rstrip('!')} = {literal(value)}")
            else:
                definitions.append(f"${name}: {type_text}")
                values[name] = json_value(value)
        header = f"({', '.join(definitions)})" if definitions else ""
        document = f"{kind} Generated{header} {{ {' '.join(roots)} }}"
        return "\n".join([document, *self.fragments]), values


def _is_leaf(parent: GraphQLObjectType, name: str) -> bool:
    named = get_named_type(parent.fields[name].type)
    return not isinstance(named, GraphQLObjectType | GraphQLInterfaceType) or isinstance(
        named, GraphQLEnumType
    )


def event_subscriptions(schema: GraphQLSchema, pools: Pools, seeds: range) -> list[Any]:
    """Subscription documents (with their variables) selecting an event's objects, one per
    seed, drawn as the queries are."""
    found = []
    for number in seeds:
        made = _Document(Random(number), schema, pools)
        found.append(made.text([made.event()], kind="subscription"))
    return found


def read_queries(
    schema: GraphQLSchema, pools: Pools
) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """Query documents with their variables."""

    def document(number: int) -> tuple[str, dict[str, Any]]:
        made = _Document(Random(number), schema, pools)
        roots = [made.root() for _ in range(made.between(1, 2))]
        return made.text(roots)

    # Hypothesis draws the seed of each document; drawing every choice through it costs ~50x.
    return st.integers(min_value=0, max_value=2**63).map(document)


async def pools_of(url: str) -> Pools:
    """Values drawn from the database at ``url`` (its ids, cursors, emails …)."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:

            async def rows(sql: str) -> list[Any]:
                return list((await conn.execute(text(sql))).all())

            ids = {
                name: [
                    to_global_id(name, r[0])
                    for r in await rows(f"SELECT id FROM {table} ORDER BY random() LIMIT 12")
                ]
                for name, table in TABLE_OF.items()
            }
            cursors: dict[str, list[str]] = {}
            for order, sql in {
                "SUBMITTED_AT:DESC": "SELECT submitted_at, id FROM loan_applications",
                "SUBMITTED_AT:ASC": "SELECT submitted_at, id FROM loan_applications",
                "AMOUNT_REQUESTED:DESC": "SELECT amount_requested, id FROM loan_applications",
                "AMOUNT_REQUESTED:ASC": "SELECT amount_requested, id FROM loan_applications",
                "CREATED_AT:ASC": "SELECT created_at, id FROM applicants",
                "CREATED_AT:DESC": "SELECT created_at, id FROM applicants",
                "APPROVED_AT:DESC": "SELECT approved_at, id FROM loans",
                "RECEIVED_ON:ASC": "SELECT received_on, id FROM payments",
                "REQUESTED_AT:DESC": "SELECT requested_at, id FROM reminders",
                "SEQUENCE:ASC": "SELECT id, id FROM audit_events",
            }.items():
                found = await rows(sql + " ORDER BY random() LIMIT 6")
                cursors[order] = [encode_cursor(order, value, key) for value, key in found]
            due = [
                r[0]
                for r in await rows("SELECT due_date FROM installments ORDER BY random() LIMIT 10")
            ]
            dates = sorted(
                {d.isoformat() for d in due}
                | {(d + timedelta(days=1)).isoformat() for d in due[:4]}
            )
            for day in dates[:3]:
                for minimum in (1, 30):
                    name = f"OVERDUE:{day}:{minimum}"
                    found = await rows(
                        f"SELECT due_date, id FROM installments WHERE due_date < '{day}' "
                        "ORDER BY random() LIMIT 3"
                    )
                    cursors[name] = [encode_cursor(name, value, key) for value, key in found]
            instants = [
                r[0].isoformat()
                for r in await rows(
                    "SELECT submitted_at FROM loan_applications ORDER BY random() LIMIT 6"
                )
            ]
            return Pools(
                ids=ids,
                cursors=cursors,
                emails=[
                    r[0]
                    for r in await rows("SELECT email FROM applicants ORDER BY random() LIMIT 8")
                ],
                names=[
                    r[0]
                    for r in await rows(
                        "SELECT full_name FROM applicants ORDER BY random() LIMIT 8"
                    )
                ],
                codes=[r[0] for r in await rows("SELECT code FROM loan_products")],
                dates=dates or ["2026-01-01"],
                instants=[*instants, "2020-01-01T00:00:00Z", "2026-06-01T12:00:00"],
                amounts=["1000", "5000.00", "25000", "0.01", "999999"],
            )
    finally:
        await engine.dispose()
