"""The decisionStats root field: how each product's, model's or score band's decisions turned out.

Definitions are lending.decision_stats'; the figures come from one statement
(db.repositories.decision_stats), answered per field: nothing here is a row of a table.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import strawberry

from db.repositories import decision_stats as repo
from graph.context import Info
from graph.errors import ClientError
from graph.permissions import OVERSEE
from lending.decision_stats import (
    MAX_GROUPS,
    DecisionGrouping,
    GroupStats,
    band,
    cuts_problem,
)
from lending.decision_stats import (
    ScoreBand as Band,
)
from lending.states import DecisionOutcome

RATE = "a Decimal ratio rounded half to even to 4 places"


@strawberry.type(description="Scores from `lower` (included) to `upper` (excluded).")
class ScoreBand:
    lower: Decimal | None = strawberry.field(description="The lowest score; null: unbounded.")
    upper: Decimal | None = strawberry.field(
        description="The score the band stops before; null: unbounded."
    )


@strawberry.type(description="How many decisions had one outcome.")
class OutcomeCount:
    outcome: DecisionOutcome = strawberry.field(description="The outcome.")
    decisions: int = strawberry.field(description="Decisions with it.")


@strawberry.type(
    description="One group of decisions and how their loans stood on `asOf`. A grouping the "
    "query did not ask for is null."
)
class DecisionGroup:
    product: str | None = strawberry.field(description="The product's code, grouped by PRODUCT.")
    model: str | None = strawberry.field(
        description="The scoring model, grouped by MODEL; null for decisions without one."
    )
    score_band: ScoreBand | None = strawberry.field(
        description="The score band, grouped by SCORE_BAND; null for decisions without a score."
    )
    outcome: DecisionOutcome | None = strawberry.field(description="Grouped by OUTCOME.")
    decisions: int = strawberry.field(description="Decisions in the group.")
    by_outcome: list[OutcomeCount] = strawberry.field(
        description="Decisions per outcome, every outcome listed."
    )
    approval_rate: Decimal = strawberry.field(
        description=f"APPROVED decisions over all the group's decisions, {RATE}."
    )
    mean_score: Decimal | None = strawberry.field(
        description="Mean score of the decisions that carry one, half to even to 4 places; "
        "null when none does."
    )
    median_score: Decimal | None = strawberry.field(
        description="Median of those scores (of an even count: the mean of the two middle "
        "ones), half to even to 4 places; null when none carries one."
    )
    disbursed: int = strawberry.field(
        description="APPROVED decisions whose loan was disbursed by `asOf`: what the rates "
        "below are shares of."
    )
    ever_bad: int = strawberry.field(
        description="Of those, loans more than 30 days past due on some day on or before "
        "`asOf` (cured since or not)."
    )
    written_off: int = strawberry.field(description="Of those, loans written off by `asOf`.")
    bad_rate: Decimal | None = strawberry.field(
        description=f"`everBad` over `disbursed`, {RATE}; null when nothing was disbursed."
    )
    written_off_rate: Decimal | None = strawberry.field(
        description=f"`writtenOff` over `disbursed`, {RATE}; null when nothing was disbursed."
    )

    @classmethod
    def of(cls, stats: GroupStats, cuts: list[Decimal]) -> DecisionGroup:
        """The GraphQL view of a group's figures."""
        key = stats.key
        found: Band | None = band(key.band, cuts) if key.band is not None else None
        return cls(
            product=key.product,
            model=key.model,
            score_band=ScoreBand(lower=found.lower, upper=found.upper) if found else None,
            outcome=key.outcome,
            decisions=stats.decisions,
            by_outcome=[OutcomeCount(outcome=o, decisions=n) for o, n in stats.by_outcome.items()],
            approval_rate=stats.approval_rate,
            mean_score=stats.mean_score,
            median_score=stats.median_score,
            disbursed=stats.disbursed,
            ever_bad=stats.ever_bad,
            written_off=stats.written_off,
            bad_rate=stats.bad_rate,
            written_off_rate=stats.written_off_rate,
        )


def checked_cuts(by: frozenset[DecisionGrouping], given: list[Any] | None) -> list[Decimal]:
    """The score bands' cut points; BAD_USER_INPUT when they cannot make bands, or are given
    without grouping by SCORE_BAND (or missing with it)."""
    if DecisionGrouping.SCORE_BAND not in by:
        if given is not None:
            raise ClientError("`scoreBands` makes bands only with SCORE_BAND in `groupBy`.")
        return []
    cuts = []
    for value in given or []:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise ClientError(f"`scoreBands` must hold decimal numbers; got {str(value)[:40]!r}.")
        cuts.append(Decimal(value))
    problem = cuts_problem(cuts)
    if problem is not None:
        raise ClientError(problem)
    return cuts


@strawberry.type
class DecisionStatsQueries:
    @OVERSEE.field(
        "Decisions made within [`from`, `to`] (UTC days), grouped as asked, with how their "
        "loans stood on `asOf`: counts, approval rate, scores, bad and write-off rates. One "
        "entry per group, by product, model, score band and outcome; more than 1000 groups "
        "are refused (BAD_USER_INPUT)."
    )
    async def decision_stats(
        self,
        info: Info,
        made_from: Annotated[
            date, strawberry.argument(name="from", description="The first day of decisions.")
        ],
        made_to: Annotated[
            date, strawberry.argument(name="to", description="The last day of decisions.")
        ],
        as_of: Annotated[
            date, strawberry.argument(description="The day the loans are assessed on.")
        ],
        group_by: Annotated[
            list[DecisionGrouping] | None,
            strawberry.argument(description="What to group by; none: one group of all."),
        ] = None,
        score_bands: Annotated[
            list[Decimal] | None,
            strawberry.argument(
                description="Ascending cut points of the score bands, at most 20 scores (0 "
                "to 1000, at most 4 decimals), with SCORE_BAND: `[600, 700]` makes the bands "
                "below 600, [600, 700) and 700 up."
            ),
        ] = None,
    ) -> list[DecisionGroup]:
        if made_from > made_to:
            raise ClientError("`from` must not be after `to`.")
        by = frozenset(group_by or ())
        cuts = checked_cuts(by, score_bands)
        found = await info.context.db.run(repo.decision_stats, made_from, made_to, as_of, by, cuts)
        if len(found) > MAX_GROUPS:
            raise ClientError(
                f"More than {MAX_GROUPS} groups: group by less, or narrow the window."
            )
        return [DecisionGroup.of(stats, cuts) for stats in found]
