"""Loan applications and their decisions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Numeric,
    Select,
    String,
    Update,
    bindparam,
    func,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.lean import FIRST, SECOND, labelled, one, one_and, pair
from db.models import (
    Applicant,
    AssessmentFactor,
    Decision,
    Loan,
    LoanApplication,
    LoanProduct,
)
from db.repositories import (
    column_values,
    index_named,
    insert_unless_taken,
    unnest_params,
    unnest_values,
)
from db.repositories.applicants import owned_by
from lending.states import ApplicationStatus

ONE_OPEN_PER_APPLICANT = index_named(
    LoanApplication.__table__, "uq_loan_applications_one_open_per_applicant"
)


@dataclass(frozen=True)
class ApplicationFilter:
    """Conditions on applications; None means no condition."""

    statuses: tuple[ApplicationStatus, ...] | None = None
    product_code: str | None = None
    applicant_email: str | None = None
    owner: str | None = None  # a borrower's email (lower case): their own applications only
    submitted_from: datetime | None = None
    submitted_to: datetime | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    # Conditions on the latest decision.
    decided_by: str | None = None
    score_min: Decimal | None = None
    score_max: Decimal | None = None

    @property
    def on_latest_decision(self) -> bool:
        """Whether any condition concerns the latest decision."""
        return any(v is not None for v in (self.decided_by, self.score_min, self.score_max))


async def owned_application(session: AsyncSession, application_id: int, owner: str) -> bool:
    """Whether application ``application_id`` is of the applicant whose email is ``owner``."""
    found = await session.scalar(
        select(LoanApplication.id).where(
            LoanApplication.id == application_id, LoanApplication.applicant_id == owned_by(owner)
        )
    )
    return found is not None


def filtered(flt: ApplicationFilter) -> Select[LoanApplication]:
    """Applications matching ``flt``."""
    stmt = select(LoanApplication)
    if flt.owner is not None:
        stmt = stmt.where(LoanApplication.applicant_id == owned_by(flt.owner))
    if flt.statuses is not None:
        stmt = stmt.where(LoanApplication.status.in_(flt.statuses))
    if flt.product_code is not None:
        stmt = stmt.where(
            LoanApplication.product_id.in_(
                select(LoanProduct.id).where(LoanProduct.code == flt.product_code)
            )
        )
    if flt.applicant_email is not None:
        stmt = stmt.where(
            LoanApplication.applicant_id.in_(
                select(Applicant.id).where(
                    func.lower(Applicant.email) == flt.applicant_email.strip().lower()
                )
            )
        )
    if flt.submitted_from is not None:
        stmt = stmt.where(LoanApplication.submitted_at >= flt.submitted_from)
    if flt.submitted_to is not None:
        stmt = stmt.where(LoanApplication.submitted_at < flt.submitted_to)
    if flt.amount_min is not None:
        stmt = stmt.where(LoanApplication.amount_requested >= flt.amount_min)
    if flt.amount_max is not None:
        stmt = stmt.where(LoanApplication.amount_requested <= flt.amount_max)
    if flt.on_latest_decision:
        stmt = stmt.where(LoanApplication.id.in_(_latest_decisions(flt)))
    return stmt


def _latest_decisions(flt: ApplicationFilter) -> Select[Any]:
    """The applications whose latest decision meets the filter's decision conditions."""
    latest = (
        select(Decision.application_id, Decision.decided_by, Decision.score)
        .ext(distinct_on(Decision.application_id))
        .order_by(Decision.application_id, Decision.decided_at.desc(), Decision.id.desc())
        .subquery("latest")
    )
    stmt = select(latest.c.application_id)
    if flt.decided_by is not None:
        stmt = stmt.where(latest.c.decided_by == flt.decided_by)
    if flt.score_min is not None:
        stmt = stmt.where(latest.c.score >= flt.score_min)
    if flt.score_max is not None:
        stmt = stmt.where(latest.c.score <= flt.score_max)
    return stmt


_LOCK = (
    select(LoanApplication)
    .where(LoanApplication.id == bindparam("p_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_LOCK_WITH_PRODUCT = (
    select(*labelled(LoanApplication, FIRST), *labelled(LoanProduct, SECOND))
    .select_from(LoanApplication)
    .join(LoanProduct, LoanProduct.id == LoanApplication.product_id)
    .where(LoanApplication.id == bindparam("p_id"))
    .with_for_update(of=LoanApplication)
)


async def lock_application(session: AsyncSession, application_id: int) -> LoanApplication | None:
    """The application, locked until the transaction ends (serializes concurrent transitions)."""
    return await one(session, _LOCK, {"p_id": application_id}, LoanApplication)


async def lock_application_with_product(
    session: AsyncSession, application_id: int
) -> tuple[LoanApplication, LoanProduct] | None:
    """The application, locked until the transaction ends, with its product (not locked)."""
    return await pair(
        session, _LOCK_WITH_PRODUCT, {"p_id": application_id}, LoanApplication, LoanProduct
    )


async def add_application(
    session: AsyncSession, application: LoanApplication
) -> LoanApplication | None:
    """Insert an application; None when the applicant has an open one already.

    The partial unique index decides, also between concurrent inserts.
    """
    return await insert_unless_taken(session, application, ONE_OPEN_PER_APPLICANT)


async def set_application_status(
    session: AsyncSession,
    application: LoanApplication,
    status: ApplicationStatus,
    *,
    withdrawal_reason: str | None = None,
) -> LoanApplication:
    """Move a locked application to ``status`` and bump its version."""
    withdrawn = status is ApplicationStatus.WITHDRAWN
    stmt = _moving(withdrawn)
    parameters = _status_values(application, status, withdrawal_reason)
    updated = await one(session, stmt, parameters, LoanApplication)
    assert updated is not None
    return updated


@cache
def _status_update(withdrawn: bool) -> Update:
    """Move application ``s_application`` to status ``s_status`` (and, withdrawn, keep the
    reason ``s_reason``), bumping its version; built once."""
    table = LoanApplication.__table__.c
    values: dict[str, Any] = {
        "status": bindparam("s_status", type_=table.status.type),
        "version": LoanApplication.version + 1,
        "updated_at": func.now(),
    }
    if withdrawn:
        values["withdrawal_reason"] = bindparam("s_reason", type_=table.withdrawal_reason.type)
    return (
        update(LoanApplication)
        .where(LoanApplication.id == bindparam("s_application", type_=BigInteger()))
        .values(values)
        .execution_options(populate_existing=True, synchronize_session=False)
    )


@cache
def _moving(withdrawn: bool) -> Update:
    return _status_update(withdrawn).returning(LoanApplication)


def _status_values(
    application: LoanApplication, status: ApplicationStatus, withdrawal_reason: str | None = None
) -> dict[str, Any]:
    """The parameters of ``_status_update``."""
    found: dict[str, Any] = {"s_application": application.id, "s_status": status}
    if status is ApplicationStatus.WITHDRAWN:
        found["s_reason"] = withdrawal_reason
    return found


async def record_decision(
    session: AsyncSession,
    application: LoanApplication,
    status: ApplicationStatus,
    decision: Decision,
    loan: Loan | None,
    factors: Sequence[AssessmentFactor] = (),
) -> LoanApplication:
    """Append ``decision`` (with its assessment's ``factors``), move the locked application to
    ``status`` and insert ``loan``, if any.

    One statement. The loan is approved when the decision is made, and the decision and loan
    objects get what the database assigned (ids, times, version), as a flush would give them.
    """
    decided = column_values(decision)
    created = column_values(loan) if loan is not None else None
    stmt = _deciding(tuple(decided), tuple(created) if created is not None else None, bool(factors))
    parameters = {f"d_{name}": value for name, value in decided.items()}
    parameters |= {f"l_{name}": value for name, value in (created or {}).items()}
    parameters |= _status_values(application, status)
    if factors:
        parameters |= unnest_values(factors, "position", "name", "contribution", "detail")
    found = await one_and(session, stmt, parameters, LoanApplication, 2 if loan is None else 5)
    assert found is not None
    updated, row = found
    decision.id, decision.decided_at = row[0], row[1]
    if loan is not None:
        loan.id, loan.version, loan.updated_at = row[2], row[3], row[4]
        loan.approved_at = decision.decided_at
    return updated


@cache
def _deciding(
    decision_columns: tuple[str, ...], loan_columns: tuple[str, ...] | None, factors: bool
) -> Update:
    """``record_decision``'s statement, built once per shape: the decision's columns set
    (parameters ``d_<column>``), the loan's (``l_<column>``; None: no loan), and whether the
    assessment has factors (``unnest_params``)."""
    decisions, loans = Decision.__table__.c, Loan.__table__.c
    decided = (
        insert(Decision)
        .values({c: bindparam(f"d_{c}", type_=decisions[c].type) for c in decision_columns})
        .returning(Decision.id, Decision.decided_at)
        .cte("decided")
    )
    returned: list[Any] = [
        select(decided.c.id).scalar_subquery(),
        select(decided.c.decided_at).scalar_subquery(),
    ]
    stmt = _status_update(False)
    if loan_columns is not None:
        created = (
            insert(Loan)
            .values(
                {
                    **{c: bindparam(f"l_{c}", type_=loans[c].type) for c in loan_columns},
                    "approved_at": select(decided.c.decided_at).scalar_subquery(),
                }
            )
            .returning(Loan.id, Loan.version, Loan.updated_at)
            .cte("created")
        )
        stmt = stmt.add_cte(created)
        returned += [select(c).scalar_subquery() for c in created.c]
    if factors:
        rows = unnest_params(
            position=Integer(), name=String(), contribution=Numeric(12, 4), detail=String()
        )
        listed = (
            insert(AssessmentFactor)
            .from_select(
                ["decision_id", *rows.c.keys()],
                select(decided.c.id, *rows.c).select_from(decided.join(rows, true())),
            )
            .cte("listed")
        )
        stmt = stmt.add_cte(listed)
    return stmt.add_cte(decided).returning(LoanApplication, *returned)
