"""How decisions and their loans turned out: counts, approval rate, scores, and bad rates by group.

For the decisions made within [from, to] (UTC days), grouped by any of product, score model,
score band and outcome, assessed on a date D (DOMAIN.md, "Portfolio indicators"):

- decisions by outcome, and the approval rate: approved over all decisions of the group;
- the mean and the median of the scores of the decisions that carry one (the median of an even
  count is the mean of the two middle scores), rounded half to even to 4 places as scores are;
- of the approved decisions whose loan was disbursed by D, the share that was ever more than
  30 days past due on or before D (a loan cured later still counts: the "bad rate") and the
  share written off by D. Rates are Decimal ratios to 4 places, as PAR is.
- a score band is a half-open interval [lower, upper) of scores; the caller gives ascending cut
  points c1 < … < cn, which make the bands (below c1), [c1, c2), …, [cn, above).

The API answers with one statement (db.repositories.decision_stats) whose groups ``finish``
turns into these figures; ``judge`` and ``fold`` are the same definitions decision by decision,
which a differential test holds equal to the statement.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import pairwise

from lending.assessment import MAX_SCORE, SCORE_DECIMALS
from lending.money import decimal_places
from lending.portfolio import ratio
from lending.states import DecisionOutcome

# Cut points a caller may give, and the days past due that make a loan bad.
MAX_CUTS = 20
BAD_AFTER_DAYS = 30
# The most groups an answer holds (products × models × bands × outcomes can be many); asking for
# more is refused, not cut short.
MAX_GROUPS = 1000
SCORE_PLACES = Decimal(1).scaleb(-4)


class DecisionGrouping(enum.Enum):
    """What decisions can be grouped by."""

    PRODUCT = "PRODUCT"
    MODEL = "MODEL"
    SCORE_BAND = "SCORE_BAND"
    OUTCOME = "OUTCOME"


@dataclass(frozen=True)
class ScoreBand:
    """Scores from ``lower`` (included) to ``upper`` (excluded); None: unbounded."""

    lower: Decimal | None
    upper: Decimal | None


def cuts_problem(cuts: Sequence[Decimal]) -> str | None:
    """Why ``cuts`` cannot make score bands, or None."""
    if not cuts:
        return "`scoreBands` needs at least one cut point."
    if len(cuts) > MAX_CUTS:
        return f"`scoreBands` may hold at most {MAX_CUTS} cut points."
    if any(not c.is_finite() for c in cuts):
        return "`scoreBands` must hold numbers."
    if any(not 0 <= c <= MAX_SCORE or decimal_places(c) > SCORE_DECIMALS for c in cuts):
        return (
            f"`scoreBands` cut points are scores: between 0 and {MAX_SCORE}, with at most "
            f"{SCORE_DECIMALS} decimal places."
        )
    if any(b <= a for a, b in pairwise(cuts)):
        return "`scoreBands` must be strictly ascending."
    return None


def band_number(score: Decimal, cuts: Sequence[Decimal]) -> int:
    """The band of ``score``: 0 below the first cut, ``i`` from the i-th cut on."""
    return bisect_right(cuts, score)


def band(number: int, cuts: Sequence[Decimal]) -> ScoreBand:
    """Band ``number`` of ``cuts``."""
    return ScoreBand(
        cuts[number - 1] if number > 0 else None, cuts[number] if number < len(cuts) else None
    )


@dataclass(frozen=True)
class GroupKey:
    """What a group's decisions share; None where the decisions are not grouped by it (or, for
    ``model`` and ``band``, where they carry no assessment or score)."""

    product: str | None = None
    model: str | None = None
    band: int | None = None
    outcome: DecisionOutcome | None = None

    def order(self) -> tuple[object, ...]:
        """Groups are listed by product, model, band and outcome, absent values first."""
        outcome = self.outcome.value if self.outcome is not None else None
        parts = (self.product, self.model, self.band, outcome)
        return tuple((part is not None, part) for part in parts)


@dataclass
class GroupCounts:
    """The sums a group's figures are made from."""

    key: GroupKey
    by_outcome: dict[DecisionOutcome, int] = field(
        default_factory=lambda: dict.fromkeys(DecisionOutcome, 0)
    )
    scored: int = 0
    score_sum: Decimal = Decimal(0)
    median_low: Decimal | None = None  # the lower and the upper middle score
    median_high: Decimal | None = None
    disbursed: int = 0
    ever_bad: int = 0
    written_off: int = 0


@dataclass(frozen=True)
class GroupStats:
    """One group's figures."""

    key: GroupKey
    decisions: int
    by_outcome: dict[DecisionOutcome, int]
    approval_rate: Decimal
    mean_score: Decimal | None
    median_score: Decimal | None
    disbursed: int
    ever_bad: int
    written_off: int
    bad_rate: Decimal | None
    written_off_rate: Decimal | None


def _score(value: Decimal) -> Decimal:
    return value.quantize(SCORE_PLACES, rounding=ROUND_HALF_EVEN)


def finish(counts: GroupCounts) -> GroupStats:
    """A group's figures from its sums."""
    decisions = sum(counts.by_outcome.values())
    approved = counts.by_outcome[DecisionOutcome.APPROVED]
    median = None
    if counts.median_low is not None and counts.median_high is not None:
        median = _score((counts.median_low + counts.median_high) / 2)
    disbursed = counts.disbursed
    return GroupStats(
        key=counts.key,
        decisions=decisions,
        by_outcome=dict(counts.by_outcome),
        approval_rate=ratio(Decimal(approved), Decimal(decisions)),
        mean_score=ratio(counts.score_sum, Decimal(counts.scored)) if counts.scored else None,
        median_score=median,
        disbursed=disbursed,
        ever_bad=counts.ever_bad,
        written_off=counts.written_off,
        bad_rate=ratio(Decimal(counts.ever_bad), Decimal(disbursed)) if disbursed else None,
        written_off_rate=ratio(Decimal(counts.written_off), Decimal(disbursed))
        if disbursed
        else None,
    )


def ordered(stats: Iterable[GroupStats]) -> list[GroupStats]:
    """Groups in their listed order (``GroupKey.order``)."""
    return sorted(stats, key=lambda s: s.key.order())


# ---- decision by decision: the reference the statement is held to ------------------------------


@dataclass(frozen=True)
class JudgedDecision:
    """One decision, and how its loan stood on the day assessed (approved decisions only)."""

    product: str
    model: str | None
    score: Decimal | None
    outcome: DecisionOutcome
    disbursed: bool = False
    ever_bad: bool = False
    written_off: bool = False


def key_of(d: JudgedDecision, by: frozenset[DecisionGrouping], cuts: Sequence[Decimal]) -> GroupKey:
    """The group of decision ``d``."""
    return GroupKey(
        product=d.product if DecisionGrouping.PRODUCT in by else None,
        model=d.model if DecisionGrouping.MODEL in by else None,
        band=band_number(d.score, cuts)
        if DecisionGrouping.SCORE_BAND in by and d.score is not None
        else None,
        outcome=d.outcome if DecisionGrouping.OUTCOME in by else None,
    )


def fold(
    decisions: Iterable[JudgedDecision], by: frozenset[DecisionGrouping], cuts: Sequence[Decimal]
) -> list[GroupStats]:
    """Each group's figures, decision by decision."""
    groups: dict[GroupKey, GroupCounts] = {}
    scores: dict[GroupKey, list[Decimal]] = {}
    for d in decisions:
        key = key_of(d, by, cuts)
        counts = groups.setdefault(key, GroupCounts(key))
        counts.by_outcome[d.outcome] += 1
        if d.score is not None:
            counts.scored += 1
            counts.score_sum += d.score
            scores.setdefault(key, []).append(d.score)
        counts.disbursed += d.disbursed
        counts.ever_bad += d.disbursed and d.ever_bad
        counts.written_off += d.disbursed and d.written_off
    for key, found in scores.items():
        found.sort()
        groups[key].median_low = found[(len(found) - 1) // 2]
        groups[key].median_high = found[len(found) // 2]
    return ordered(finish(c) for c in groups.values())
