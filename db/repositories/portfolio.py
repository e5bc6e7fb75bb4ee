"""The portfolio on a date, per currency, in one statement (definitions: lending.portfolio).

Each loan of the cohort (approved by the date, of the products and disbursal window asked for)
is given its state, the principal its payments had not yet repaid, its overdue amount and days
past due on the date; the statement then sums those per currency, state, delinquency bucket
and PAR class (rendered once from lending's tables), and lending.portfolio.fold makes the
indicators of those few groups.

Nothing is read per instalment or per allocation of the whole book. What a loan's payments
repaid by D is what its allocations hold (kept on the loan: ``principal_paid``,
``interest_paid``) less what was received after D (an index on ``received_on``: nothing when D
is today). Days past due and the overdue amount come from the instalments unpaid on D, due
before it and not settled by it (``settled_on``, through the overdue list's partial indexes),
each less what payments received by D paid towards it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from lending.delinquency import BUCKET_BOUNDS, DelinquencyBucket
from lending.portfolio import PAR_DAYS, CurrencyTotals, PositionGroup, fold
from lending.states import LoanStatus


def _bucket(days: str) -> str:
    """The delinquency bucket of ``days`` past due, as lending.delinquency.bucket_for has it."""
    cases = " ".join(
        f"WHEN {days} >= {low}"
        + ("" if high is None else f" AND {days} <= {high}")
        + f" THEN '{bucket.value}'"
        for bucket, (low, high) in BUCKET_BOUNDS.items()
    )
    return f"CASE {cases} END"


def _risk(days: str) -> str:
    """How many PAR thresholds ``days`` past due is beyond (lending.portfolio.risk_of)."""
    return " + ".join(f"({days} > {threshold})::int" for threshold in PAR_DAYS)


_STATEMENT = """
WITH cohort AS (
  SELECT l.id, l.currency, l.principal, l.status::text AS status, l.disbursed_on,
         (l.closed_at AT TIME ZONE 'UTC')::date AS closed_on, l.principal_paid, l.interest_paid
  FROM loans l
  WHERE (l.approved_at AT TIME ZONE 'UTC')::date <= {as_of}
    AND ({disbursed_from} IS NULL OR l.disbursed_on >= {disbursed_from})
    AND ({disbursed_to} IS NULL OR l.disbursed_on <= {disbursed_to}){products}
),
later AS (
  SELECT a.loan_id, sum(a.principal) AS principal, sum(a.interest) AS interest
  FROM payment_allocations a
  WHERE a.received_on > {as_of}
  GROUP BY a.loan_id
),
unpaid AS (
  SELECT i.id, i.loan_id, i.due_date, i.principal_due + i.interest_due AS total
  FROM installments i
  WHERE i.due_date < {as_of} AND i.settled_on IS NULL
  UNION ALL
  SELECT i.id, i.loan_id, i.due_date, i.principal_due + i.interest_due
  FROM installments i
  WHERE i.due_date < {as_of} AND i.settled_on > {as_of}
),
late AS (
  SELECT u.loan_id, min(u.due_date) AS oldest,
    sum(u.total - coalesce((
      SELECT sum(a.principal + a.interest + a.interest_waived) FROM payment_allocations a
      WHERE a.installment_id = u.id AND a.received_on <= {as_of}), 0)) AS overdue
  FROM unpaid u
  GROUP BY u.loan_id
),
position AS (
  SELECT c.currency, c.principal,
    CASE
      WHEN c.status IN ('CANCELLED', 'WRITTEN_OFF') AND c.closed_on <= {as_of} THEN c.status
      WHEN c.disbursed_on IS NULL OR c.disbursed_on > {as_of} THEN 'APPROVED'
      WHEN c.principal_paid - coalesce(later.principal, 0) >= c.principal THEN 'PAID_OFF'
      ELSE 'ACTIVE'
    END AS state,
    c.principal_paid - coalesce(later.principal, 0) AS principal_paid,
    c.interest_paid - coalesce(later.interest, 0) AS interest_paid,
    coalesce(late.overdue, 0) AS overdue,
    coalesce({as_of} - late.oldest, 0) AS dpd
  FROM cohort c
  LEFT JOIN later ON later.loan_id = c.id
  LEFT JOIN late ON late.loan_id = c.id
)
SELECT currency, state, {bucket} AS bucket, {risk} AS risk, count(*) AS loans,
  sum(principal) AS principal, sum(principal - principal_paid) AS principal_left,
  sum(overdue) AS overdue, sum(principal_paid) AS principal_paid,
  sum(interest_paid) AS interest_paid
FROM position
GROUP BY 1, 2, 3, 4
"""
# A product filter, when given: the loans' applications of those products.
_PRODUCTS = """
    AND l.application_id IN (
      SELECT a.id FROM loan_applications a JOIN loan_products p ON p.id = a.product_id
      WHERE p.code = ANY(CAST(:codes AS text[])))"""


# A day is sent as text and cast here: asyncpg sends 9999-12-31 as 'infinity', from which no day
# can be counted.
_DAY = "CAST(CAST(:{} AS text) AS date)"


def _statement(products: bool) -> TextClause:
    return text(
        _STATEMENT.format(
            products=_PRODUCTS if products else "",
            bucket=_bucket("dpd"),
            risk=_risk("dpd"),
            **{name: _DAY.format(name) for name in ("as_of", "disbursed_from", "disbursed_to")},
        )
    )


PORTFOLIO, OF_PRODUCTS = _statement(False), _statement(True)


def _day(day: date | None) -> str | None:
    """A day as the statement takes it (``_DAY``)."""
    return None if day is None else day.isoformat()


@dataclass(frozen=True)
class PortfolioFilter:
    """Which loans: of these products (None: all), disbursed within these days (None: open)."""

    product_codes: tuple[str, ...] | None = None
    disbursed_from: date | None = None
    disbursed_to: date | None = None


async def portfolio(
    session: AsyncSession, as_of: date, flt: PortfolioFilter
) -> list[CurrencyTotals]:
    """The portfolio on ``as_of`` of the loans ``flt`` selects, one entry per currency."""
    codes = flt.product_codes
    rows = await session.execute(
        PORTFOLIO if codes is None else OF_PRODUCTS,
        {
            "as_of": _day(as_of),
            "disbursed_from": _day(flt.disbursed_from),
            "disbursed_to": _day(flt.disbursed_to),
        }
        | ({} if codes is None else {"codes": list(codes)}),
    )
    return fold(
        PositionGroup(
            currency=r.currency,
            state=LoanStatus(r.state),
            bucket=DelinquencyBucket(r.bucket),
            risk=r.risk,
            loans=r.loans,
            principal=r.principal,
            principal_left=r.principal_left,
            overdue_amount=r.overdue,
            principal_collected=r.principal_paid,
            interest_collected=r.interest_paid,
        )
        for r in rows
    )
