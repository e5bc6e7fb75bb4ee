"""Repositories: every SQL statement of the service lives here. They flush, never commit."""

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Index, Select, Table, bindparam, func, inspect
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine

from db.lean import one

T = TypeVar("T")


async def records(session: AsyncSession, stmt: Select[Any]) -> Sequence[Any]:
    """The rows of an entity ``select`` as read-only records, for reads that change nothing.

    Executed on the session's connection, ``select(Model)`` yields plain rows whose attributes
    are the model's columns (enums and amounts converted as usual), without identity-map or
    change-tracking bookkeeping: loading a thousand instalments takes less than half the time
    it takes as ORM objects. Callers read attributes only; nothing here can be flushed.
    """
    connection = await session.connection()
    found: Sequence[Any] = (await connection.execute(stmt)).all()
    return found


def column_values(row: object) -> dict[str, Any]:
    """The column values set on a new row object: what a flush would insert for it.

    Columns left unset are left out, so that their server defaults apply.
    """
    state = inspect(row)
    return {
        c.key: state.dict[c.key] for c in state.mapper.local_table.columns if c.key in state.dict
    }


async def insert_unless_taken(session: AsyncSession, row: T, index: Index) -> T | None:
    """Insert a new row object; None when the partial unique ``index`` already holds its key.

    ON CONFLICT DO NOTHING decides, also between concurrent inserts, and a refusal leaves the
    transaction usable (no savepoint needed).
    """
    values = column_values(row)
    model: Any = type(row)
    stmt = _inserting(model, index, tuple(values))
    return await one(session, stmt, {f"i_{k}": v for k, v in values.items()}, model)


@cache
def _inserting(model: Any, index: Index, columns: tuple[str, ...]) -> Any:
    """``insert_unless_taken``'s statement, built once per model, index and columns set (their
    values the parameters ``i_<column>``)."""
    table = model.__table__.c
    return (
        insert(model)
        .values({c: bindparam(f"i_{c}", type_=table[c].type) for c in columns})
        .on_conflict_do_nothing(
            index_elements=index.expressions,
            index_where=index.dialect_options["postgresql"]["where"],
        )
        .returning(model)
    )


def index_named(table: Any, name: str) -> Index:
    """One of a mapped table's indexes, for an ON CONFLICT clause that names its columns."""
    assert isinstance(table, Table)
    return next(index for index in table.indexes if index.name == name)


def unnest_params(**columns: TypeEngine[Any]) -> TableValuedAlias:
    """Rows given as one array per column, each the bound parameter ``u_<column>`` (see
    ``unnest_values``): a single parameter each however many rows, so that a statement made of
    it is built once and bound per call."""
    arrays = [bindparam(f"u_{name}", type_=ARRAY(type_)) for name, type_ in columns.items()]
    return func.unnest(*arrays).table_valued(*columns).render_derived()


def unnest_values(rows: Sequence[Any], *columns: str) -> dict[str, list[Any]]:
    """The parameters of ``unnest_params``' columns: per column, that attribute of each row."""
    return {f"u_{name}": [getattr(row, name) for row in rows] for name in columns}
