"""Render read plans into one SQL statement that builds the whole JSON answer in PostgreSQL.

Objects are ``row_to_json`` of a lateral select whose column aliases are the response keys,
lists are ``array_to_json(array_agg(… ORDER BY …))``: both write compact JSON with the same
string escapes as the service's JSON encoder, so the text is spliced into the response as it
is. Amounts are written as ``numeric::text`` (the column's scale, as ``str(Decimal)`` writes
it), timestamps as ``datetime.isoformat()`` writes them in UTC, ids and cursors as URL-safe
base64 without padding. Every value a request supplies is a parameter; identifiers come from
the plan (tables, columns, and response keys that GraphQL restricts to ``[_A-Za-z0-9]``).

A statement depends on the plan and on the *shape* of the bound values (which filter
conditions are present, whether a cursor was given, the sort): ``shape`` computes it, and the
caller caches one ``Statement`` per (plan, shape); ``Statement.arguments`` reads the parameter
values of a request from its bound slots.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from db.reads.plan import (
    CALLER_SLOT,
    OWNER_SLOT,
    ById,
    ByValue,
    CallerName,
    Column,
    Computation,
    Computed,
    Connection,
    Const,
    Domain,
    EdgeCursor,
    EdgeNode,
    Edges,
    Embedded,
    IsSet,
    Kind,
    Many,
    Masked,
    Money,
    NodeById,
    Obj,
    OldestOverdue,
    One,
    Ordered,
    OwnApplicant,
    PageArgs,
    PageInfo,
    PageInfoPart,
    Root,
    RowGlobalId,
    Single,
    SumOf,
    TextGlobalId,
    ToOne,
    Total,
    TotalCount,
    Value,
)
from db.repositories.applicants import ApplicantFilter
from db.repositories.applications import ApplicationFilter
from db.repositories.audit import ChainFilter
from db.repositories.loans import LoanFilter
from db.repositories.servicing import OverdueFilter
from lending.audit import CHAIN_PREFIX
from lending.delinquency import BUCKET_BOUNDS, OTHERWISE, STATUS_RULES, StatusTest
from lending.money import MINOR_DIGITS
from lending.privacy import HIDDEN_CHARACTER, HIDING, Mask
from lending.states import LoanStatus, ReminderStatus

Bound = Mapping[int, Any]
Extract = Callable[[Bound], Any]


@dataclass(frozen=True)
class Statement:
    """A rendered statement: its text, how to read its parameters, whether to re-encode JSON."""

    sql: str
    params: tuple[Extract, ...]
    # A JSON column's text has spaces after separators; such answers are re-encoded compactly.
    normalize: bool

    def arguments(self, bound: Bound) -> list[Any]:
        """The parameter values of a request."""
        return [extract(bound) for extract in self.params]


def shape(bound: Bound) -> tuple[Any, ...]:
    """What of the bound values changes a statement's text (not the values themselves)."""
    return tuple((slot, _shape_of(value)) for slot, value in sorted(bound.items()))


def _shape_of(value: Any) -> Any:
    if isinstance(value, PageArgs):
        page = value.page
        return (
            _shape_of(value.filter),
            page.after is None,
            page.before is None,
            page.descending,
            page.backward,
            value.order.column,
            value.order.kind,
        )
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return tuple(_shape_of(getattr(value, f.name)) for f in dataclasses.fields(value))
    if value is None:
        return None
    if isinstance(value, tuple):
        return tuple(item is None or _shape_of(item) for item in value)
    return True


def render_root(root: Root, bound: Bound) -> Statement:
    """One root field's statement: a single row, single column of JSON text."""
    render = _Render(bound)
    expression = render.root(root)
    return render.statement(f"SELECT coalesce(({expression})::text, 'null')")


def render_data(roots: Sequence[tuple[str, Root]], bound: Bound) -> Statement:
    """A whole ``data`` object's statement, for operations whose root fields all compile."""
    render = _Render(bound)
    columns = ", ".join(f"{render.root(root)} AS {_key(key)}" for key, root in roots)
    return render.statement(f"SELECT row_to_json(d)::text FROM (SELECT {columns}) d")


def _key(response_key: str) -> str:
    """A response key as a column alias (GraphQL names are [_A-Za-z][_0-9A-Za-z]*)."""
    assert response_key.isidentifier(), response_key
    assert response_key.isascii(), response_key
    return f'"{response_key}"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _b64(text_sql: str) -> str:
    """URL-safe base64 without padding or line breaks, as graph ids and cursors are written."""
    return f"translate(encode(convert_to({text_sql}, 'UTF8'), 'base64'), E'+/=\\n', '-_')"


def _timestamp(sql: str) -> str:
    """A timestamptz as Python's isoformat() writes it in UTC (no fraction when it is zero)."""
    utc = f"({sql} AT TIME ZONE 'UTC')"
    return (
        f"CASE WHEN date_trunc('second', {sql}) = {sql} "
        f"""THEN to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"') """
        f"""ELSE to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') END"""
    )


def _text_of(sql: str, kind: Kind) -> str:
    """A value as the text a cursor or the JSON answer holds."""
    if kind is Kind.DATETIME:
        return _timestamp(sql)
    return f"({sql})::text"  # dates too: DateStyle is ISO on the read connections


_CAST = {
    Kind.DATETIME: "timestamptz",
    Kind.DATE: "date",
    Kind.DECIMAL: "numeric",
    Kind.INT: "bigint",
    Kind.TEXT: "text",
}


# What settles an instalment in an allocation: principal and interest paid, interest waived.
_SETTLED = "principal + {a}.interest + {a}.interest_waived"


def _slot(slot: int, read: Callable[[Any], Any] = lambda value: value) -> Extract:
    return lambda bound: read(bound[slot])


# How a row of a table that holds no applicant_id leads to one: (its column, the table it names).
_OWNED_THROUGH = {
    "decisions": ("application_id", "loan_applications"),
    "installments": ("loan_id", "loans"),
    "payments": ("loan_id", "loans"),
    "reminders": ("loan_id", "loans"),
}


def _masked(text_sql: str, mask: str) -> str:
    """``text_sql`` masked as lending.privacy masks it (strict: null stays null)."""
    hiding = _literal(HIDING)
    if mask == Mask.EMAIL.value:  # the first character, then the domain from its '@'
        at = f"strpos({text_sql}, '@')"
        domain = f"CASE WHEN {at} > 0 THEN substr({text_sql}, {at}) ELSE '' END"
        return f"(left({text_sql}, 1) || {hiding} || {domain})"
    assert mask == Mask.PHONE.value, mask  # digits hidden but the last two characters
    hidden = _literal(HIDDEN_CHARACTER)
    return f"(regexp_replace(left({text_sql}, -2), '[0-9]', {hidden}, 'g') || right({text_sql}, 2))"


def _minor_digits(currency_sql: str) -> str:
    cases = " ".join(
        f"WHEN {_literal(code)} THEN {digits}" for code, digits in sorted(MINOR_DIGITS.items())
    )
    return f"CASE {currency_sql} {cases} END"


class _Render:
    """One rendering: fresh table aliases and the parameters in the order they appear."""

    def __init__(self, bound: Bound) -> None:
        self.bound = bound
        self.params: list[Extract] = []
        self.numbers: dict[tuple[Any, ...], int] = {}
        self.aliases = 0
        self.normalize = False
        # Currencies read once for a row (``columns``): (row alias, links) -> their SQL.
        self.currencies: dict[tuple[str, tuple[Any, ...]], str] = {}
        self.tables: dict[str, str] = {}  # the table of each row alias, where known

    def statement(self, sql: str) -> Statement:
        return Statement(sql, tuple(self.params), self.normalize)

    def alias(self, prefix: str = "t") -> str:
        self.aliases += 1
        return f"{prefix}{self.aliases}"

    def param(self, key: tuple[Any, ...], extract: Extract, cast: str) -> str:
        """A parameter read from the bound slots; the same key reuses one number.

        Dates travel as ISO text: asyncpg would send 9999-12-31 as PostgreSQL's 'infinity',
        with which no day can be counted.
        """
        if key not in self.numbers:
            self.params.append(_iso(extract) if cast == "date" else extract)
            self.numbers[key] = len(self.params)
        return f"${self.numbers[key]}::{'text::date' if cast == 'date' else cast}"

    def date(self, slot: int) -> str:
        return self.param((slot, "date"), _slot(slot), "date")

    # ---- roots ------------------------------------------------------------------------------

    def root(self, root: Root) -> str:
        if isinstance(root, Connection):
            return self.connection(root, None)
        if isinstance(root, ById):
            key = self.param((root.slot,), _slot(root.slot), "bigint")
            where = f"{{t}}.id = {key}" + self.owned(root.table, root.owned)
            return self.row_object(root.table, root.obj, where)
        if isinstance(root, NodeById):
            return self.nodes(root)
        if isinstance(root, Const):
            return f"{_literal(root.json)}::json"
        if isinstance(root, Single):
            j = self.alias("j")
            return f"(SELECT row_to_json({j}) FROM (SELECT {self.columns(root.obj, '')}) {j})"
        return self.ordered(root)

    def nodes(self, root: NodeById) -> str:
        if root.many:
            types = self.param((root.slot, 0), _slot(root.slot, _types), "text[]")
            keys = self.param((root.slot, 1), _slot(root.slot, _keys), "bigint[]")
            u = self.alias("u")
            cases = self.node_cases(root, f"{u}.ty", f"{u}.k")
            return (
                f"(SELECT coalesce(array_to_json(array_agg({cases} ORDER BY {u}.o)), '[]') "
                f"FROM unnest({types}, {keys}) WITH ORDINALITY AS {u}(ty, k, o))"
            )
        type_name = self.param((root.slot, 0), _slot(root.slot, lambda v: v and v[0]), "text")
        key = self.param((root.slot, 1), _slot(root.slot, lambda v: v and v[1]), "bigint")
        return self.node_cases(root, type_name, key)

    def node_cases(self, root: NodeById, type_sql: str, key_sql: str) -> str:
        if not root.cases:
            return "NULL::json"
        whens = " ".join(
            f"WHEN {_literal(case.type_name)} THEN "
            + self.row_object(
                case.table, case.obj, f"{{t}}.id = {key_sql}" + self.owned(case.table, root.owned)
            )
            for case in root.cases
        )
        return f"CASE {type_sql} {whens} END"

    def owned(self, table: str, owned: bool) -> str:
        """The condition (`` AND …`` on alias ``{t}``) that a row of ``table`` is the borrower's
        in OWNER_SLOT, when ``owned``; products are everyone's."""
        if not owned or table == "loan_products":
            return ""
        owner = self.param((OWNER_SLOT,), _slot(OWNER_SLOT), "text")
        applicant = f"(SELECT id FROM applicants WHERE lower(email) = {owner})"
        through = _OWNED_THROUGH.get(table)
        if table == "applicants":
            return f" AND {{t}}.id = {applicant}"
        if through is None:
            return f" AND {{t}}.applicant_id = {applicant}"
        link, parent = through
        return f" AND {{t}}.{link} IN (SELECT id FROM {parent} WHERE applicant_id = {applicant})"

    def ordered(self, root: Ordered) -> str:
        active = self.param((root.slot,), _slot(root.slot), "boolean")
        t = self.alias()
        return self.rows_array(
            root.table, t, root.obj, f"({active} IS NOT TRUE OR {t}.active)", root.order
        )

    # ---- objects ----------------------------------------------------------------------------

    def columns(self, obj: Obj, row: str) -> str:
        """The select list of ``obj``'s values for ``row``. A currency that several amounts
        read from a linked row (an instalment's three amounts, from its loan) is read once,
        in a FROM clause of the list: PostgreSQL runs a scalar subquery once per mention."""
        links = [value.currency for _, value in obj.fields if isinstance(value, Money)]
        shared = sorted(
            {
                link
                for link in links
                if link and links.count(link) > 1 and (row, link) not in self.currencies
            },
            key=repr,
        )
        if not row or not shared:
            return ", ".join(
                f"{self.value(value, row)} AS {_key(key)}" for key, value in obj.fields
            )
        m = self.alias("m")
        lookups = [
            f"{self.currency(Money(None, link), row)} AS c{n}" for n, link in enumerate(shared)
        ]
        saved = dict(self.currencies)
        self.currencies.update({(row, link): f"{m}.c{n}" for n, link in enumerate(shared)})
        try:
            listed = ", ".join(
                f"{self.value(value, row)} AS {_key(key)}" for key, value in obj.fields
            )
        finally:
            self.currencies = saved
        # OFFSET 0 keeps the planner from pulling the subquery up (and so copying the lookup
        # back into each amount).
        return f"{listed} FROM (SELECT {', '.join(lookups)} OFFSET 0) {m}"

    def object(self, obj: Obj, row: str) -> str:
        """The JSON object of ``row`` (an alias in scope)."""
        j = self.alias("j")
        return f"(SELECT row_to_json({j}) FROM (SELECT {self.columns(obj, row)}) {j})"

    def row_object(self, table: str, obj: Obj, where: str, order: str = "") -> str:
        """The JSON object of the one row of ``table`` meeting ``where`` ({t}: its alias)."""
        t, j = self.alias(), self.alias("j")
        self.tables[t] = table
        return (
            f"(SELECT row_to_json({j}) FROM {table} {t} "
            f"CROSS JOIN LATERAL (SELECT {self.columns(obj, t)}) {j} "
            f"WHERE {where.format(t=t)}{order.format(t=t)})"
        )

    def rows_array(
        self, table: str, t: str, obj: Obj, where: str, order: tuple[tuple[str, bool], ...]
    ) -> str:
        """A JSON array of the objects of ``table``'s rows (alias ``t``) meeting ``where``."""
        j = self.alias("j")
        self.tables[t] = table
        return (
            f"(SELECT coalesce(array_to_json(array_agg(row_to_json({j}) "
            f"ORDER BY {_order_by(t, order)})), '[]') FROM {table} {t} "
            f"CROSS JOIN LATERAL (SELECT {self.columns(obj, t)}) {j} WHERE {where})"
        )

    def value(self, value: Value, row: str) -> str:
        if isinstance(value, Column):
            return self.column(value, row)
        if isinstance(value, Masked):
            return _masked(f"{row}.{value.column.name}", value.mask)
        if isinstance(value, CallerName):
            return f"to_json({self.param((CALLER_SLOT,), _slot(CALLER_SLOT), 'text')})"
        if isinstance(value, OwnApplicant):
            owner = self.param((OWNER_SLOT,), _slot(OWNER_SLOT), "text")
            return self.row_object("applicants", value.obj, f"lower({{t}}.email) = {owner}")
        if isinstance(value, Total):
            return "(" + " + ".join(f"{row}.{name}" for name in value.names) + ")::text"
        if isinstance(value, IsSet):
            return f"({row}.{value.name} IS NOT NULL)"
        if isinstance(value, RowGlobalId):
            return _b64(f"{_literal(value.type_name + ':')} || {row}.id")
        if isinstance(value, TextGlobalId):
            return _b64(f"{row}.{value.name}")
        if isinstance(value, Const):
            return f"{_literal(value.json)}::json"
        if isinstance(value, ByValue):
            whens = " ".join(f"WHEN {_literal(k)} THEN {_literal(v)}::json" for k, v in value.cases)
            return f"CASE {row}.{value.name} {whens} END"
        if isinstance(value, Computed):
            return self.computed(value, row)
        if isinstance(value, Money):
            digits = _minor_digits(self.currency(value, row))
            return f"round(({self.value(value.value, row)})::numeric, {digits})::text"
        if isinstance(value, One):
            link = value.link
            return self.row_object(
                link.table, value.obj, f"{{t}}.{link.remote} = {row}.{link.local}"
            )
        if isinstance(value, Many):
            return self.many(value, row)
        if isinstance(value, SumOf):
            t = self.alias()
            total = " + ".join(f"{t}.{name}" for name in value.columns)
            return (
                f"(SELECT coalesce(sum({total}), 0) FROM {value.table} {t} "
                f"WHERE {t}.{value.remote} = {row}.{value.local})::text"
            )
        if isinstance(value, Embedded):
            made = self.object(value.obj, row)
            return (
                f"CASE WHEN {row}.{value.when} IS NULL THEN NULL ELSE {made} END"
                if value.when
                else made
            )
        if isinstance(value, OldestOverdue):
            day = self.date(value.slot)
            where = f"{{t}}.loan_id = {row}.id AND {self.overdue('{t}', day)}"
            return self.row_object(
                "installments", value.obj, where, " ORDER BY {t}.due_date, {t}.number LIMIT 1"
            )
        return self.connection(value, row)

    def currency(self, money: Money, row: str) -> str:
        """The currency of an amount: a column of ``row`` or of a row linked to it."""
        links = money.currency
        if not links:
            return f"{row}.currency"
        hoisted = self.currencies.get((row, links))
        if hoisted is not None:
            return hoisted
        found = f"{row}.{links[0].local}"
        for n, link in enumerate(links):
            c = self.alias("c")
            wanted = links[n + 1].local if n + 1 < len(links) else "currency"
            found = f"(SELECT {c}.{wanted} FROM {link.table} {c} WHERE {c}.{link.remote} = {found})"
        return found

    def column(self, column: Column, row: str) -> str:
        """A column as JSON: dates are written as ISO 8601 by PostgreSQL's JSON output itself.

        Every function applied here is strict: a null column stays null.
        """
        sql = f"{row}.{column.name}"
        if column.kind is Kind.JSON:
            self.normalize = True
        if column.kind in (Kind.DECIMAL, Kind.DATETIME):
            return _text_of(sql, column.kind)
        return sql

    def many(self, many: Many, row: str) -> str:
        link = many.link
        where = f"{{t}}.{link.remote} = {row}.{link.local}"
        if link.first_only:
            order = f" ORDER BY {_order_by('{t}', link.order)} LIMIT 1"
            return self.row_object(link.table, many.obj, where, order)
        t = self.alias()
        saved = dict(self.currencies)
        self.currencies.update(self.from_parent(many, row, t))
        try:
            return self.rows_array(link.table, t, many.obj, where.format(t=t), link.order)
        finally:
            self.currencies = saved

    def from_parent(self, many: Many, row: str, t: str) -> dict[tuple[str, tuple[Any, ...]], str]:
        """The currencies of ``many``'s rows (alias ``t``) that the parent ``row`` already has
        in scope: an instalment of a loan's schedule reads its loan's currency column rather
        than looking the loan up by its ``loan_id``, once per instalment."""
        parent = self.tables.get(row)
        back = ToOne(parent, many.link.remote, many.link.local) if parent else None
        found = {}
        for _, value in many.obj.fields:
            if isinstance(value, Money) and value.currency and value.currency[0] == back:
                rest = Money(None, value.currency[1:])
                found[(t, value.currency)] = self.currency(rest, row)
        return found

    # ---- computed values (the rules come from lending, as data) ------------------------------

    def paid(self, installment: str, day: str | None, what: str = _SETTLED) -> str:
        """What was paid (or waived) against an instalment (received by ``day``, when given)."""
        a = self.alias("a")
        by = f" AND {a}.received_on <= {day}" if day else ""
        return (
            f"(SELECT coalesce(sum({a}.{what.format(a=a)}), 0) FROM payment_allocations {a} "
            f"WHERE {a}.installment_id = {installment}.id{by})"
        )

    def status(self, i: str, day: str) -> str:
        """The instalment's status on ``day``, by lending.delinquency.STATUS_RULES."""
        paid = self.paid(i, day)
        tests = {
            StatusTest.NOTHING_OUTSTANDING: f"{i}.principal_due + {i}.interest_due - {paid} <= 0",
            StatusTest.DUE_BEFORE: f"{i}.due_date < {day}",
            StatusTest.DUE_ON: f"{i}.due_date = {day}",
            StatusTest.SOMETHING_PAID: f"{paid} > 0",
        }
        whens = " ".join(
            f"WHEN {tests[test]} THEN {_literal(status.name)}" for test, status in STATUS_RULES
        )
        return f"(CASE {whens} ELSE {_literal(OTHERWISE.name)} END)"

    def overdue(self, i: str, day: str) -> str:
        return f"{self.status(i, day)} = {_literal('OVERDUE')}"

    def loan_days_past_due(self, loan: str, day: str) -> str:
        i = self.alias("i")
        return (
            f"coalesce((SELECT {day} - min({i}.due_date) FROM installments {i} "
            f"WHERE {i}.loan_id = {loan}.id AND {self.overdue(i, day)}), 0)"
        )

    def computed(self, value: Computed, row: str) -> str:
        kind = value.computation
        day = self.date(value.slot) if value.slot is not None else None
        if kind is Computation.PRINCIPAL_PAID:
            return f"{self.paid(row, None, 'principal')}::text"
        if kind is Computation.INTEREST_PAID:
            return f"{self.paid(row, None, 'interest')}::text"
        if kind is Computation.OUTSTANDING:
            return f"({row}.principal_due + {row}.interest_due - {self.paid(row, None)})::text"
        if kind is Computation.PAID_ON:
            a = self.alias("a")
            return (
                f"(SELECT CASE WHEN count(*) > 0 AND sum({a}.{_SETTLED.format(a=a)}) >= "
                f"{row}.principal_due + {row}.interest_due "
                f"THEN max({a}.received_on) END "
                f"FROM payment_allocations {a} WHERE {a}.installment_id = {row}.id)"
            )
        assert day is not None or kind is Computation.OUTSTANDING_PRINCIPAL, kind
        if kind is Computation.STATUS:
            assert day is not None
            return self.status(row, day)
        if kind is Computation.DAYS_PAST_DUE:
            assert day is not None
            return f"(CASE WHEN {self.overdue(row, day)} THEN {day} - {row}.due_date ELSE 0 END)"
        if kind is Computation.OUTSTANDING_PRINCIPAL:
            return self.loan_left(row, "principal_due", "principal", None)
        if kind is Computation.PAYOFF:
            return self.loan_left(row, "principal_due + {i}.interest_due", _SETTLED, day)
        assert day is not None
        if kind is Computation.LOAN_DAYS_PAST_DUE:
            return self.loan_days_past_due(row, day)
        if kind is Computation.LOAN_BUCKET:
            days = self.loan_days_past_due(row, day)
            whens = " ".join(
                f"WHEN {days} >= {low}"
                + (f" AND {days} <= {high}" if high is not None else "")
                + f" THEN {_literal(bucket.name)}"
                for bucket, (low, high) in BUCKET_BOUNDS.items()
            )
            return f"(CASE {whens} END)"
        i = self.alias("i")
        left = f"{i}.principal_due + {i}.interest_due - {self.paid(i, day)}"
        total = (
            f"(SELECT coalesce(sum({left}), 0) FROM installments {i} "
            f"WHERE {i}.loan_id = {row}.id AND {self.overdue(i, day)})"
        )
        return f"round({total}, {_minor_digits(f'{row}.currency')})::text"

    def loan_left(self, loan: str, due: str, paid: str, day: str | None) -> str:
        """What a disbursed loan's schedule asks for less what was paid (null before)."""
        i, a = self.alias("i"), self.alias("a")
        by = f" AND {a}.received_on <= {day}" if day else ""
        scheduled = (
            f"(SELECT coalesce(sum({i}.{due.format(i=i)}), 0) FROM installments {i} "
            f"WHERE {i}.loan_id = {loan}.id)"
        )
        received = (
            f"(SELECT coalesce(sum({a}.{paid.format(a=a)}), 0) FROM payment_allocations {a} "
            f"WHERE {a}.loan_id = {loan}.id{by})"
        )
        return (
            f"CASE WHEN {loan}.disbursed_on IS NULL THEN NULL "
            f"ELSE ({scheduled} - {received})::text END"
        )

    # ---- connections ------------------------------------------------------------------------

    def connection(self, conn: Connection, row: str | None) -> str:
        """A page as db.pagination reads it: rows in reading order, numbered ``_n`` from 1.

        A backward page (``last``) is read in the reversed order, so its edges are written in
        descending ``_n`` and its first edge is its highest ``_n``.
        """
        args: PageArgs = self.bound[conn.slot]
        slot = conn.slot
        t, p, c = self.alias(), self.alias("p"), self.alias("c")
        table = conn.domain.value
        order = args.order
        direction = "DESC" if args.page.reads_descending else "ASC"

        def ordered(a: str) -> str:
            return f"{a}.{order.column} {direction}, {a}.id {direction}"

        def keyset(a: str) -> list[str]:
            """The rows of the list (as ``a``) beyond the cursors."""
            conditions = self.conditions(conn, a, row, per_row=True)
            for end in ("after", "before"):
                if getattr(args.page, end) is None:
                    continue
                cast = _CAST[order.kind]
                value = self.param((slot, end), _slot(slot, _cursor_part(end, 0)), cast)
                key = self.param((slot, f"{end}_id"), _slot(slot, _cursor_part(end, 1)), "bigint")
                # rows after `after` / before `before` in the list's order (a descending list's
                # later rows hold smaller keys)
                later = (end == "after") != args.page.descending
                compare = ">" if later else "<"
                conditions.append(f"({a}.{order.column}, {a}.id) {compare} ({value}, {key})")
            return conditions

        first = self.param((slot, "first"), _slot(slot, lambda a: a.page.size), "bigint")
        numbered = f"SELECT {t}.*, row_number() OVER (ORDER BY {ordered(t)}) AS _n FROM"
        limit = f"ORDER BY {ordered(t)} LIMIT {first} + 1"
        split = self.split(conn)
        if split is None:
            page = f"{numbered} {table} {t} WHERE {_all(keyset(t))} {limit}"
        else:
            # The list falls into a large part read in its order through an index, so that
            # only the page is read of it, and a small part read whole (materialized, so that the
            # planner cannot choose to walk the large part's index through it).
            u, rest = self.alias(), self.alias("rest")
            large, small = split(u)
            page = (
                f"WITH {rest} AS MATERIALIZED (SELECT {u}.* FROM {table} {u} "
                f"WHERE {_all([*keyset(u), small])}) "
                f"{numbered} ((SELECT {u}.* FROM {table} {u} WHERE {_all([*keyset(u), large])} "
                f"ORDER BY {ordered(u)} LIMIT {first} + 1) UNION ALL SELECT * FROM {rest}) {t} "
                f"{limit}"
            )

        def cursor() -> str:
            prefix = self.param(
                (slot, "order"), _slot(slot, lambda a: json.dumps(a.order.name)), "text"
            )
            value = _text_of(f"{p}.{order.column}", order.kind)
            return _b64(f"'[' || {prefix} || ',\"' || {value} || '\",' || {p}.id || ']'")

        parts = []
        for key, part in conn.fields:
            if isinstance(part, Edges):
                sql = self.edges(part, p, cursor, first, args.page.backward)
            elif isinstance(part, PageInfo):
                sql = self.page_info(part, p, cursor, first, args)
            elif isinstance(part, TotalCount):
                t2 = self.alias()
                where = _all(self.conditions(conn, t2, row))
                if part.slot is None:
                    sql = f"(SELECT count(*) FROM {table} {t2} WHERE {where})"
                else:
                    at_most = self.param((part.slot,), _slot(part.slot), "bigint")
                    sql = (
                        f"(SELECT count(*) FROM (SELECT FROM {table} {t2} WHERE {where} "
                        f"LIMIT {at_most}) {self.alias('n')})"
                    )
            else:
                sql = f"{_literal(part.json)}::json"
            parts.append(f"{sql} AS {_key(key)}")
        return (
            f"(WITH {p} AS ({page}) SELECT row_to_json({c}) FROM (SELECT {', '.join(parts)}) {c})"
        )

    def edges(
        self, edges: Edges, p: str, cursor: Callable[[], str], first: str, backward: bool
    ) -> str:
        e = self.alias("e")
        columns = []
        for key, part in edges.fields:
            if isinstance(part, EdgeCursor):
                sql = cursor()
            elif isinstance(part, EdgeNode):
                sql = self.object(part.obj, p)
            else:
                sql = f"{_literal(part.json)}::json"
            columns.append(f"{sql} AS {_key(key)}")
        return (
            f"(SELECT coalesce(array_to_json(array_agg(row_to_json({e}) "
            f"ORDER BY {p}._n{' DESC' if backward else ''})), '[]') "
            f"FROM {p} CROSS JOIN LATERAL (SELECT {', '.join(columns)}) {e} "
            f"WHERE {p}._n <= {first})"
        )

    def page_info(
        self, info: PageInfo, p: str, cursor: Callable[[], str], first: str, args: PageArgs
    ) -> str:
        page = args.page
        more = f"(SELECT count(*) > {first} FROM {p})"  # rows beyond the page, where it was read

        # Functions, not strings: a cursor adds a parameter, so it is rendered only if selected.
        def nearest() -> str:  # the row read first
            return f"(SELECT {cursor()} FROM {p} WHERE {p}._n = 1 AND {p}._n <= {first})"

        def farthest() -> str:  # the row read last
            return (
                f"(SELECT {cursor()} FROM {p} WHERE {p}._n <= {first} ORDER BY {p}._n DESC LIMIT 1)"
            )

        columns = []
        for key, part in info.fields:
            if part is PageInfoPart.HAS_NEXT_PAGE:
                sql = _bool(page.before is not None) if page.backward else more
            elif part is PageInfoPart.HAS_PREVIOUS_PAGE:
                sql = more if page.backward else _bool(page.after is not None)
            elif part is PageInfoPart.START_CURSOR:
                sql = farthest() if page.backward else nearest()
            elif part is PageInfoPart.END_CURSOR:
                sql = nearest() if page.backward else farthest()
            else:
                assert isinstance(part, Const)
                sql = f"{_literal(part.json)}::json"
            columns.append(f"{sql} AS {_key(key)}")
        i = self.alias("i")
        return f"(SELECT row_to_json({i}) FROM (SELECT {', '.join(columns)}) {i})"

    def conditions(
        self, conn: Connection, t: str, row: str | None, per_row: bool = False
    ) -> list[str]:
        """The link to the parent row and the filter of the connection's domain; ``per_row``
        where a page reads few rows (see ``overdue_filter``)."""
        conditions = []
        if conn.local is not None and row is not None:
            conditions.append(f"{t}.{conn.remote} = {row}.{conn.local}")
        flt = self.bound[conn.slot].filter
        slot = conn.slot
        if conn.domain is Domain.APPLICATIONS:
            conditions += self.application_filter(flt, t, slot)
        elif conn.domain is Domain.APPLICANTS:
            conditions += self.applicant_filter(flt, t, slot)
        elif conn.domain is Domain.LOANS:
            conditions += self.loan_filter(flt, t, slot)
        elif conn.domain is Domain.OVERDUE_INSTALLMENTS:
            conditions += self.overdue_filter(flt, t, slot, per_row)
        elif conn.domain is Domain.AUDIT_EVENTS:
            conditions += self.chain_filter(flt, t, slot)
        return conditions

    def split(self, conn: Connection) -> Callable[[str], tuple[str, str]] | None:
        """For a list whose rows fall into a large part and a small one (which together are its
        filter), the two conditions on an alias; None for any other list.

        An overdue list: the instalments not settled (read in due order through the partial
        index) and those settled after its day (few, unless the day is long past).
        """
        if conn.domain is not Domain.OVERDUE_INSTALLMENTS:
            return None
        day = self.filter_param(conn.slot, "as_of", "date")
        return lambda a: (f"{a}.settled_on IS NULL", f"{a}.settled_on > {day}")

    def filter_param(
        self, slot: int, name: str, cast: str, read: Callable[[Any], Any] | None = None
    ) -> str:
        def extract(bound: Bound) -> Any:
            value = getattr(bound[slot].filter, name)
            return read(value) if read else value

        return self.param((slot, "filter", name), extract, cast)

    def owner_of(self, slot: int) -> str:
        """The key of the applicant a borrower's filter is scoped to, as a subquery."""
        owner = self.filter_param(slot, "owner", "text")
        return f"(SELECT id FROM applicants WHERE lower(email) = {owner})"

    def application_filter(self, f: ApplicationFilter, t: str, slot: int) -> list[str]:
        out = []
        if f.owner is not None:
            out.append(f"{t}.applicant_id = {self.owner_of(slot)}")
        if f.statuses is not None:
            statuses = self.filter_param(slot, "statuses", "text[]", lambda v: [s.value for s in v])
            out.append(f"{t}.status = ANY({statuses})")
        if f.product_code is not None:
            code = self.filter_param(slot, "product_code", "text")
            out.append(f"{t}.product_id IN (SELECT id FROM loan_products WHERE code = {code})")
        if f.applicant_email is not None:
            email = self.filter_param(slot, "applicant_email", "text", lambda v: v.strip().lower())
            out.append(
                f"{t}.applicant_id IN (SELECT id FROM applicants WHERE lower(email) = {email})"
            )
        if f.on_latest_decision:
            out.append(f"{t}.id IN ({self.latest_decisions(f, slot)})")
        return out + self.ranges(f, t, slot, _APPLICATION_RANGES)

    def latest_decisions(self, f: ApplicationFilter, slot: int) -> str:
        """The applications whose latest decision meets the filter's decision conditions."""
        d = self.alias("d")
        conditions = [
            f"{d}.{column} {compare} {self.filter_param(slot, name, cast)}"
            for name, column, compare, cast in _LATEST_DECISION
            if getattr(f, name) is not None
        ]
        return (
            f"SELECT {d}.application_id FROM (SELECT DISTINCT ON (application_id) "
            "application_id, decided_by, score FROM decisions "
            f"ORDER BY application_id, decided_at DESC, id DESC) {d} WHERE {_all(conditions)}"
        )

    def applicant_filter(self, f: ApplicantFilter, t: str, slot: int) -> list[str]:
        out = []
        if f.owner is not None:
            out.append(f"lower({t}.email) = {self.filter_param(slot, 'owner', 'text')}")
        if f.email is not None:
            email = self.filter_param(slot, "email", "text", lambda v: v.strip().lower())
            out.append(f"lower({t}.email) = {email}")
        if f.name_contains:
            pattern = self.filter_param(slot, "name_contains", "text", ApplicantFilter.name_pattern)
            out.append(f"{t}.full_name ILIKE {pattern}")
        return out + self.ranges(f, t, slot, _APPLICANT_RANGES)

    def ranges(self, f: Any, t: str, slot: int, ranges: Sequence[Range]) -> list[str]:
        """The bounds given in a filter, each on its column."""
        return [
            f"{t}.{column} {compare} {self.filter_param(slot, name, cast)}"
            for name, column, compare, cast in ranges
            if getattr(f, name) is not None
        ]

    def loan_filter(self, f: LoanFilter, t: str, slot: int) -> list[str]:
        out = []
        if f.owner is not None:
            out.append(f"{t}.applicant_id = {self.owner_of(slot)}")
        if f.statuses is not None:
            statuses = self.filter_param(slot, "statuses", "text[]", lambda v: [s.value for s in v])
            out.append(f"{t}.status = ANY({statuses})")
        if f.days_past_due is not None:
            out.append(f"{t}.status = {_literal(LoanStatus.ACTIVE.value)}")
            out.append(self.bands(f, t, slot) if f.days_past_due else "false")
        return out

    def bands(self, f: LoanFilter, t: str, slot: int) -> str:
        """Loans whose days past due on the filter's date fall in any of its bands."""
        day = self.filter_param(slot, "as_of", "date")
        i = self.alias("i")
        days = (
            f"coalesce((SELECT {day} - min({i}.due_date) FROM installments {i} "
            f"WHERE {i}.loan_id = {t}.id AND {i}.due_date < {day} AND "
            f"{i}.principal_due + {i}.interest_due > {self.paid(i, day)}), 0)"
        )
        bands = []
        assert f.days_past_due is not None
        for n, (_, high) in enumerate(f.days_past_due):
            low_sql = self.param((slot, "band", n, 0), _band(slot, n, 0), "integer")
            if high is None:
                bands.append(f"{days} >= {low_sql}")
            else:
                high_sql = self.param((slot, "band", n, 1), _band(slot, n, 1), "integer")
                bands.append(f"({days} >= {low_sql} AND {days} <= {high_sql})")
        return "(" + " OR ".join(bands) + ")"

    def overdue_filter(
        self, f: OverdueFilter, t: str, slot: int, per_row: bool = False
    ) -> list[str]:
        """Instalments overdue on the filter's day. ``per_row``, each one's loan is looked up
        by its key: the compiled statement is planned once for any parameters, and such a plan
        of an overdue page, not knowing how few instalments were settled after the day, would
        otherwise hash every active loan to check a handful of rows (17 ms at 100,000 loans)."""
        if f.latest_due is None:
            return ["false"]
        day = self.filter_param(slot, "as_of", "date")
        latest = self.filter_param(slot, "latest_due", "date")
        active = _literal(LoanStatus.ACTIVE.value)
        loan_active = (
            f"(SELECT status FROM loans WHERE id = {t}.loan_id) = {active}"
            if per_row
            else f"{t}.loan_id IN (SELECT id FROM loans WHERE status = {active})"
        )
        out = [
            loan_active,
            f"{t}.due_date <= {latest}",
            f"({t}.settled_on IS NULL OR {t}.settled_on > {day})",
        ]
        if f.not_reminded_since is not None:
            since = self.filter_param(slot, "not_reminded_since", "date")
            r = self.alias("r")
            failed = _literal(ReminderStatus.FAILED.value)
            out.append(
                f"NOT EXISTS (SELECT 1 FROM reminders {r} WHERE {r}.installment_id = {t}.id "
                f"AND {r}.requested_on >= {since} AND {r}.status <> {failed})"
            )
        return out

    def chain_filter(self, f: ChainFilter, t: str, slot: int) -> list[str]:
        if f.chain is not None:
            return [f"{t}.chain = {self.filter_param(slot, 'chain', 'text')}"]
        if f.loan_key is not None:
            loan = self.filter_param(slot, "loan_key", "bigint")
            prefix = _literal(CHAIN_PREFIX)
            return [f"{t}.chain = (SELECT {prefix} || application_id FROM loans WHERE id = {loan})"]
        return ["false"]


# Bounds of filters: (filter field, column, comparison, parameter type).
Range = tuple[str, str, str, str]
_APPLICATION_RANGES: tuple[Range, ...] = (
    ("submitted_from", "submitted_at", ">=", "timestamptz"),
    ("submitted_to", "submitted_at", "<", "timestamptz"),
    ("amount_min", "amount_requested", ">=", "numeric"),
    ("amount_max", "amount_requested", "<=", "numeric"),
)
_LATEST_DECISION: tuple[Range, ...] = (
    ("decided_by", "decided_by", "=", "text"),
    ("score_min", "score", ">=", "numeric"),
    ("score_max", "score", "<=", "numeric"),
)
_APPLICANT_RANGES: tuple[Range, ...] = (
    ("created_from", "created_at", ">=", "timestamptz"),
    ("created_to", "created_at", "<", "timestamptz"),
)


def _iso(extract: Extract) -> Extract:
    def iso(bound: Bound) -> str | None:
        value = extract(bound)
        return value.isoformat() if value is not None else None

    return iso


def _band(slot: int, n: int, end: int) -> Extract:
    return lambda bound: bound[slot].filter.days_past_due[n][end]


def _types(value: Sequence[tuple[str, int] | None]) -> list[str | None]:
    return [item[0] if item else None for item in value]


def _keys(value: Sequence[tuple[str, int] | None]) -> list[int | None]:
    return [item[1] if item else None for item in value]


def _order_by(t: str, order: tuple[tuple[str, bool], ...]) -> str:
    return ", ".join(f"{t}.{column} {'DESC' if desc else 'ASC'}" for column, desc in order)


def _cursor_part(end: str, index: int) -> Callable[[PageArgs], Any]:
    """Reads the sort value (0) or the id (1) of a page's ``after`` or ``before`` key."""
    return lambda args: getattr(args.page, end)[index]


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _all(conditions: list[str]) -> str:
    return " AND ".join(conditions) if conditions else "true"
