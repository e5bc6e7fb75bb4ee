"""Decisions and how their loans turned out, per group, in one statement (lending.decision_stats).

Each decision made within the window is read with its product, score and model, and, when it
approved, its loan: disbursed by the day assessed, ever more than 30 days past due by then (an
instalment not settled 31 days after it fell due, ``settled_on``), written off by then. The loans
ever late are found once, from the two small sets of instalments that can make them so (the
unsettled ones past due, through the overdue lists' partial index; those settled late, through
a partial index of their own), not by a lookup per loan. The
statement groups them by what the caller asked (a column it does not group by is NULL) and
returns per group the counts, the sum of the scores and the two middle scores (the lower and
the upper median, by ``percentile_disc`` in both orders: exact, where ``percentile_cont`` would
be a float). A statement is built once per grouping.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from functools import cache

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from lending.decision_stats import (
    BAD_AFTER_DAYS,
    MAX_GROUPS,
    DecisionGrouping,
    GroupCounts,
    GroupKey,
    GroupStats,
    finish,
    ordered,
)
from lending.states import DecisionOutcome

_STATEMENT = """
WITH made AS (
  SELECT d.outcome::text AS outcome, d.score, d.model, {product_code} AS product,
         l.id AS loan_id, coalesce(l.disbursed_on <= {as_of}, false) AS counted,
         l.status = 'WRITTEN_OFF' AND (l.closed_at AT TIME ZONE 'UTC')::date <= {as_of}
           AS written_off
  FROM decisions d{products}
  LEFT JOIN loans l ON l.application_id = d.application_id AND d.outcome = 'APPROVED'
  WHERE d.decided_at >= {made_from}::timestamp AT TIME ZONE 'UTC'
    AND d.decided_at < ({made_to} + 1)::timestamp AT TIME ZONE 'UTC'
),
bad AS (
  SELECT i.loan_id FROM installments i
  WHERE i.settled_on IS NULL AND i.due_date <= {as_of} - {bad_day}
  UNION
  SELECT i.loan_id FROM installments i
  WHERE i.settled_on > i.due_date + {bad_day}
    AND i.due_date <= {as_of} - {bad_day}
),
judged AS (
  SELECT m.*, m.counted AND bad.loan_id IS NOT NULL AS ever_bad
  FROM made m LEFT JOIN bad ON bad.loan_id = m.loan_id
)
SELECT {product} AS product, {model} AS model, {band} AS band, {outcome} AS outcome,
  {by_outcome},
  count(score) AS scored, coalesce(sum(score), 0) AS score_sum,
  percentile_disc(0.5) WITHIN GROUP (ORDER BY score) AS median_low,
  percentile_disc(0.5) WITHIN GROUP (ORDER BY score DESC) AS median_high,
  count(*) FILTER (WHERE counted) AS disbursed,
  count(*) FILTER (WHERE ever_bad) AS ever_bad,
  count(*) FILTER (WHERE counted AND written_off) AS written_off
FROM judged
GROUP BY 1, 2, 3, 4
LIMIT {enough}
"""


_PRODUCTS = """
  JOIN loan_applications a ON a.id = d.application_id
  JOIN loan_products p ON p.id = a.product_id"""


@cache
def _statement(by: frozenset[DecisionGrouping]) -> TextClause:
    def grouped(what: DecisionGrouping, column: str, kind: str) -> str:
        return column if what in by else f"CAST(NULL AS {kind})"

    products = DecisionGrouping.PRODUCT in by
    return text(
        _STATEMENT.format(
            # the product is read only to group by it
            products=_PRODUCTS if products else "",
            product_code="p.code" if products else "CAST(NULL AS text)",
            bad_day=BAD_AFTER_DAYS + 1,
            # Days are sent as text: asyncpg sends 9999-12-31 as 'infinity', which no day follows.
            **{d: f"CAST(CAST(:{d} AS text) AS date)" for d in ("as_of", "made_from", "made_to")},
            enough=MAX_GROUPS + 1,  # one more than an answer may hold: too many to answer
            product=grouped(DecisionGrouping.PRODUCT, "product", "text"),
            model=grouped(DecisionGrouping.MODEL, "model", "text"),
            band=grouped(
                DecisionGrouping.SCORE_BAND,
                "width_bucket(score, CAST(:cuts AS numeric[]))",
                "integer",
            ),
            outcome=grouped(DecisionGrouping.OUTCOME, "outcome", "text"),
            by_outcome=",\n  ".join(
                f"count(*) FILTER (WHERE outcome = '{o.value}') AS {o.value.lower()}"
                for o in DecisionOutcome
            ),
        )
    )


async def decision_stats(
    session: AsyncSession,
    made_from: date,
    made_to: date,
    as_of: date,
    by: frozenset[DecisionGrouping],
    cuts: Sequence[Decimal],
) -> list[GroupStats]:
    """The figures of each group of the decisions made within [made_from, made_to] (checked
    cut points ``cuts`` when grouped by SCORE_BAND); more than MAX_GROUPS of them when there
    are too many to answer."""
    parameters: dict[str, object] = {
        "made_from": made_from.isoformat(),
        "made_to": made_to.isoformat(),
        "as_of": as_of.isoformat(),
    }
    if DecisionGrouping.SCORE_BAND in by:
        parameters["cuts"] = list(cuts)
    rows = await session.execute(_statement(by), parameters)
    found = []
    for r in rows:
        key = GroupKey(
            product=r.product,
            model=r.model,
            band=r.band,
            outcome=DecisionOutcome(r.outcome) if r.outcome is not None else None,
        )
        counts = GroupCounts(
            key,
            by_outcome={o: getattr(r, o.value.lower()) for o in DecisionOutcome},
            scored=r.scored,
            score_sum=r.score_sum,
            median_low=r.median_low,
            median_high=r.median_high,
            disbursed=r.disbursed,
            ever_bad=r.ever_bad,
            written_off=r.written_off,
        )
        found.append(finish(counts))
    return ordered(found)
