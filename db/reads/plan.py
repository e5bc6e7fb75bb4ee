"""Read plans: what one compiled root field reads, in neutral terms that db.reads.sql renders.

A plan is built once per (document, operation, role) by the GraphQL layer from a selection and
the read declared beside each field; it names tables and columns, never GraphQL. Values that
only a request knows (ids, page sizes, cursors, filters, dates) sit in numbered *slots* and are
bound per request. Every plan node renders to a SQL expression whose value is JSON text (or a
JSON scalar) of exactly the shape the per-field resolvers produce.

The leaf declarations (``Column``, ``Total``, ``IsSet``, ``RowGlobalId``, ``TextGlobalId``)
also know how to read their value from a row in Python, so the per-field path builds its
objects from the same declaration the compiler renders.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias


class Kind(enum.Enum):
    """How a column's value is written as JSON (the GraphQL scalar it is served as)."""

    TEXT = "TEXT"  # String, ID, and enums whose names equal their stored values
    INT = "INT"
    BOOL = "BOOL"
    DECIMAL = "DECIMAL"  # a JSON string with the column's scale, as str(Decimal) writes it
    DATE = "DATE"  # ISO 8601, as date.isoformat() writes it
    DATETIME = "DATETIME"  # ISO 8601 in UTC, as datetime.isoformat() writes it
    JSON = "JSON"  # a JSON document column


def global_id(type_name: str, key: int) -> str:
    """The global id of row ``key`` of ``type_name``: URL-safe base64 of "Type:key", unpadded."""
    return base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode().rstrip("=")


# ---- leaves: one value of the current row --------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A column of the current row."""

    name: str
    kind: Kind = Kind.TEXT

    def read(self, row: Any) -> Any:
        """The value from a row read by the per-field path."""
        return getattr(row, self.name)


@dataclass(frozen=True)
class Masked:
    """A text column shown masked (lending.privacy.Mask, by name): its shape kept, most of its
    characters hidden, exactly as lending.privacy masks it."""

    column: Column
    mask: str


@dataclass(frozen=True)
class Total:
    """The sum of amount columns of the current row (an instalment's total due, say)."""

    names: tuple[str, ...]

    def read(self, row: Any) -> Decimal:
        """The value from a row read by the per-field path."""
        total: Decimal = sum(
            (getattr(row, name) for name in self.names[1:]), getattr(row, self.names[0])
        )
        return total


@dataclass(frozen=True)
class IsSet:
    """Whether a column of the current row is not null."""

    name: str

    def read(self, row: Any) -> bool:
        """The value from a row read by the per-field path."""
        return getattr(row, self.name) is not None


@dataclass(frozen=True)
class RowGlobalId:
    """The current row's global id (its ``id`` column under a type name)."""

    type_name: str = ""  # filled in by the planner with the runtime type

    def read(self, row: Any) -> str:
        """The value from a row read by the per-field path."""
        return global_id(self.type_name, row.id)


@dataclass(frozen=True)
class TextGlobalId:
    """A global id from a text column holding "Type:key" (audit events name their entity so)."""

    name: str

    def read(self, row: Any) -> str:
        """The value from a row read by the per-field path."""
        type_name, _, key = getattr(row, self.name).partition(":")
        return global_id(type_name, int(key))


@dataclass(frozen=True)
class Const:
    """A constant JSON value (``__typename``)."""

    json: str


@dataclass(frozen=True)
class ByValue:
    """A JSON value chosen by a column's value (``availableActions`` from ``status``)."""

    name: str
    cases: tuple[tuple[str, str], ...]  # (stored value, JSON text)


class Computation(enum.Enum):
    """Values computed from related rows, rendered by db.reads.sql from the rules in lending."""

    PRINCIPAL_PAID = "PRINCIPAL_PAID"  # instalment: principal paid, ever
    INTEREST_PAID = "INTEREST_PAID"  # instalment: interest paid, ever
    OUTSTANDING = "OUTSTANDING"  # instalment: total due less everything paid
    PAID_ON = "PAID_ON"  # instalment: when fully paid
    STATUS = "STATUS"  # instalment: status on a date (slot)
    DAYS_PAST_DUE = "DAYS_PAST_DUE"  # instalment: days past due on a date (slot)
    OUTSTANDING_PRINCIPAL = "OUTSTANDING_PRINCIPAL"  # loan: principal not yet repaid
    PAYOFF = "PAYOFF"  # loan: everything left to pay on a date (slot)
    LOAN_DAYS_PAST_DUE = "LOAN_DAYS_PAST_DUE"  # loan delinquency on a date (slot)
    LOAN_BUCKET = "LOAN_BUCKET"
    LOAN_OVERDUE_AMOUNT = "LOAN_OVERDUE_AMOUNT"


@dataclass(frozen=True)
class Computed:
    """A value computed in SQL from the current row and its related rows."""

    computation: Computation
    slot: int | None = None  # the date it is assessed on, where it takes one


# ---- objects and relations --------------------------------------------------------------------


@dataclass(frozen=True)
class Obj:
    """A JSON object of the current row: response keys in selection order, each with a value."""

    fields: tuple[tuple[str, Value], ...]


@dataclass(frozen=True)
class ToOne:
    """The row of ``table`` whose ``remote`` column equals the current row's ``local`` column."""

    table: str
    local: str
    remote: str = "id"


@dataclass(frozen=True)
class ToMany:
    """The rows of ``table`` linked like ``ToOne``, in ``order`` ((column, descending) pairs).

    ``first_only``: only the first of them, or null.
    """

    table: str
    local: str
    remote: str
    order: tuple[tuple[str, bool], ...]
    first_only: bool = False


@dataclass(frozen=True)
class SumOf:
    """The sum of ``columns`` over the rows of ``table`` linked like ``ToOne`` (0 for none)."""

    table: str
    local: str
    remote: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class One:
    """The object of the related row."""

    link: ToOne
    obj: Obj


@dataclass(frozen=True)
class Many:
    """The objects of the related rows."""

    link: ToMany
    obj: Obj


@dataclass(frozen=True)
class Embedded:
    """Another object made from the current row, null unless ``when`` is set (a schedule)."""

    obj: Obj
    when: str | None = None


@dataclass(frozen=True)
class OldestOverdue:
    """A loan's oldest instalment overdue on the date in ``slot``, or null."""

    slot: int
    obj: Obj


@dataclass(frozen=True)
class Money:
    """An amount written with exactly its currency's minor digits (JPY "78028", USD "12.50").

    ``value`` is what the amount is read as (a column, a total, a computed value, a sum);
    ``currency`` the links from the current row to the row whose ``currency`` column names the
    currency (none: the current row's own).
    """

    value: Any
    currency: tuple[ToOne, ...] = ()


# ---- connections ------------------------------------------------------------------------------


class Domain(enum.Enum):
    """The lists a connection can page through, each with its own filter."""

    APPLICANTS = "applicants"
    APPLICATIONS = "loan_applications"
    LOANS = "loans"
    PAYMENTS = "payments"
    REMINDERS = "reminders"
    OVERDUE_INSTALLMENTS = "installments"
    AUDIT_EVENTS = "audit_events"


@dataclass(frozen=True)
class EdgeCursor:
    """An edge's cursor."""


@dataclass(frozen=True)
class EdgeNode:
    """An edge's node."""

    obj: Obj


class PageInfoPart(enum.Enum):
    """A field of PageInfo."""

    HAS_NEXT_PAGE = "HAS_NEXT_PAGE"
    HAS_PREVIOUS_PAGE = "HAS_PREVIOUS_PAGE"
    START_CURSOR = "START_CURSOR"
    END_CURSOR = "END_CURSOR"


@dataclass(frozen=True)
class Edges:
    """The list of edges, each an object of cursor, node and constants."""

    fields: tuple[tuple[str, EdgeCursor | EdgeNode | Const], ...]


@dataclass(frozen=True)
class PageInfo:
    """The page information object."""

    fields: tuple[tuple[str, PageInfoPart | Const], ...]


@dataclass(frozen=True)
class TotalCount:
    """How many rows match the filter, across pages; with a ``slot``, no more than the bound
    value there (graph.relay.count_limit; None counts every row)."""

    slot: int | None = None


@dataclass(frozen=True)
class Connection:
    """A page of ``domain``'s rows (linked to the current row when ``local`` and ``remote``).

    The slot holds a ``PageArgs``: the filter, the page request and the order.
    """

    domain: Domain
    slot: int
    fields: tuple[tuple[str, Edges | PageInfo | TotalCount | Const], ...]
    local: str | None = None
    remote: str | None = None


# ---- roots ------------------------------------------------------------------------------------

# The slot holding a borrower's email (lower case; empty for staff): roots marked ``owned``
# read only the rows of that applicant (another's row reads as none).
OWNER_SLOT = 0
# The slot holding the caller's name (``viewer { name }``).
CALLER_SLOT = -1


@dataclass(frozen=True)
class CallerName:
    """The caller's name, from CALLER_SLOT."""


@dataclass(frozen=True)
class OwnApplicant:
    """The applicant whose email is in OWNER_SLOT (null when none is)."""

    obj: Obj


@dataclass(frozen=True)
class Single:
    """A root object read from no table: its fields are constants, the caller's, or reads."""

    obj: Obj


@dataclass(frozen=True)
class ById:
    """One row of ``table`` by the key in ``slot`` (None: null); ``owned``: see OWNER_SLOT."""

    table: str
    slot: int
    obj: Obj
    owned: bool = False


@dataclass(frozen=True)
class NodeCase:
    """How ``node(id:)`` answers for one type: its table and the object selected on it."""

    type_name: str
    table: str
    obj: Obj


@dataclass(frozen=True)
class NodeById:
    """Any object by (type name, key) in ``slot``; ``many``: a list of them in order;
    ``owned``: see OWNER_SLOT."""

    cases: tuple[NodeCase, ...]
    slot: int
    many: bool = False
    owned: bool = False


@dataclass(frozen=True)
class Ordered:
    """Every row of ``table`` in ``order``; the slot holds whether only active rows count."""

    table: str
    order: tuple[tuple[str, bool], ...]
    slot: int
    obj: Obj


Value: TypeAlias = (
    Column
    | Masked
    | Total
    | IsSet
    | RowGlobalId
    | TextGlobalId
    | Const
    | ByValue
    | Computed
    | Money
    | One
    | Many
    | SumOf
    | Embedded
    | OldestOverdue
    | Connection
    | CallerName
    | OwnApplicant
)
Root: TypeAlias = ById | NodeById | Connection | Ordered | Const | Single

_OF_THE_ROW = (Column, Masked, Total, IsSet, RowGlobalId, TextGlobalId, Const, ByValue)


def of_the_row(obj: Obj) -> bool:
    """Whether every value of ``obj`` is read from its own row alone (no related row, no
    computation): what the per-field path answers from a row in hand, without a statement."""
    return all(
        isinstance(value, _OF_THE_ROW)
        or (isinstance(value, Money) and not value.currency and isinstance(value.value, Column))
        for _, value in obj.fields
    )


@dataclass(frozen=True)
class Order:
    """A page's ordering: the sort column, how its value reads in a cursor, the order's name."""

    column: str
    kind: Kind
    name: str  # named in every cursor, so a cursor of another ordering is refused


@dataclass(frozen=True)
class PageArgs:
    """What a connection's arguments bind to: its filter, the page and the order."""

    filter: Any
    page: Any  # db.pagination.PageRequest
    order: Order

    def owned_by(self, owner: str) -> PageArgs:
        """These arguments scoped to the rows of the borrower whose email is ``owner``."""
        return dataclasses.replace(self, filter=dataclasses.replace(self.filter, owner=owner))
