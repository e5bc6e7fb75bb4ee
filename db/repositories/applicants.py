"""Applicants, identified by email compared case-insensitively."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ScalarSelect, Select, bindparam, func, select, union_all
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.lean import one
from db.models import Applicant


@dataclass(frozen=True)
class ApplicantFilter:
    """Conditions on applicants; None means no condition."""

    email: str | None = None
    name_contains: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    owner: str | None = None  # a borrower's email (lower case): their own row only

    @staticmethod
    def name_pattern(part: str) -> str:
        """The ILIKE pattern matching names that contain ``part`` (every character literally)."""
        escaped = part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return "%" + escaped + "%"


async def get_or_create_applicant(
    session: AsyncSession,
    *,
    full_name: str,
    email: str,
    phone: str | None,
    created_at: datetime | None = None,
) -> Applicant:
    """The applicant with ``email`` (any case), created if new; safe under concurrent calls."""
    values: dict[str, object] = {"full_name": full_name, "email": email, "phone": phone}
    if created_at is not None:
        values["created_at"] = created_at
    parameters = {f"a_{k}": v for k, v in values.items()} | {"a_lower": email.lower()}
    applicant = await one(session, _either(tuple(values)), parameters, Applicant)
    if applicant is None:
        # The applicant was inserted by a transaction that committed after this statement's
        # snapshot was taken (the insert waited for it): a new statement sees it.
        applicant = await one(session, _BY_EMAIL, parameters, Applicant)
    assert applicant is not None
    return applicant


_SAME_EMAIL = func.lower(Applicant.email) == bindparam("a_lower")
_BY_EMAIL = select(Applicant).where(_SAME_EMAIL)


@cache
def _either(columns: tuple[str, ...]) -> Any:
    """One statement: the new row, or else the existing one; built once per columns set."""
    table = Applicant.__table__.c
    inserted = (
        insert(Applicant)
        .values({c: bindparam(f"a_{c}", type_=table[c].type) for c in columns})
        .on_conflict_do_nothing(index_elements=[func.lower(Applicant.email)])
        .returning(*Applicant.__table__.c)
        .cte("inserted")
    )
    either = union_all(select(inserted), select(Applicant.__table__).where(_SAME_EMAIL))
    return select(Applicant).from_statement(either)


def owned_by(owner: str) -> ScalarSelect[int]:
    """The key of the applicant whose email is ``owner`` (lower case), as a subquery."""
    return select(Applicant.id).where(func.lower(Applicant.email) == owner).scalar_subquery()


async def owner_key(session: AsyncSession, owner: str) -> int | None:
    """The key of the applicant whose email is ``owner`` (lower case), if there is one."""
    found: int | None = await session.scalar(select(owned_by(owner)))
    return found


def filtered(flt: ApplicantFilter) -> Select[Applicant]:
    """Applicants matching ``flt``."""
    stmt = select(Applicant)
    if flt.owner is not None:
        stmt = stmt.where(func.lower(Applicant.email) == flt.owner)
    if flt.email is not None:
        stmt = stmt.where(func.lower(Applicant.email) == flt.email.strip().lower())
    if flt.name_contains:
        stmt = stmt.where(
            Applicant.full_name.ilike(ApplicantFilter.name_pattern(flt.name_contains))
        )
    if flt.created_from is not None:
        stmt = stmt.where(Applicant.created_at >= flt.created_from)
    if flt.created_to is not None:
        stmt = stmt.where(Applicant.created_at < flt.created_to)
    return stmt
