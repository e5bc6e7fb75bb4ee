"""Decision statistics without a database: score bands from cut points, medians and rates."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lending.decision_stats import (
    DecisionGrouping,
    JudgedDecision,
    ScoreBand,
    band,
    band_number,
    cuts_problem,
    fold,
)
from lending.states import DecisionOutcome

CUTS = [Decimal("600"), Decimal("700")]


@pytest.mark.parametrize(
    ("score", "number", "expected"),
    [
        ("0", 0, ScoreBand(None, Decimal("600"))),
        ("599.9999", 0, ScoreBand(None, Decimal("600"))),
        ("600", 1, ScoreBand(Decimal("600"), Decimal("700"))),  # a band holds its lower bound
        ("699.9999", 1, ScoreBand(Decimal("600"), Decimal("700"))),
        ("700", 2, ScoreBand(Decimal("700"), None)),
        ("1000", 2, ScoreBand(Decimal("700"), None)),
    ],
)
def test_a_score_falls_in_one_half_open_band(score, number, expected):
    assert band_number(Decimal(score), CUTS) == number
    assert band(number, CUTS) == expected


@pytest.mark.parametrize(
    ("cuts", "problem"),
    [
        ([], "at least one"),
        ([Decimal(700), Decimal(600)], "strictly ascending"),
        ([Decimal(600), Decimal(600)], "strictly ascending"),
        ([Decimal("NaN")], "numbers"),
        ([Decimal(n) for n in range(21)], "at most 20"),
        ([Decimal("1E+200000")], "between 0 and 1000"),  # no database could hold it
        ([Decimal("-1")], "between 0 and 1000"),
        ([Decimal("600.00001")], "at most 4 decimal places"),
    ],
)
def test_cut_points_that_make_no_bands_are_refused(cuts, problem):
    found = cuts_problem(cuts)
    assert found is not None
    assert problem in found


def decision(score: str | None, outcome=DecisionOutcome.APPROVED, **loan) -> JudgedDecision:
    return JudgedDecision("P", "m@1", Decimal(score) if score else None, outcome, **loan)


def test_median_mean_and_rates_of_a_group():
    decisions = [
        decision("600.0001", disbursed=True, ever_bad=True),
        decision("600.0002", disbursed=True),
        decision("700", DecisionOutcome.REJECTED),
        decision("650", disbursed=True, written_off=True, ever_bad=True),
        decision(None, DecisionOutcome.REFERRED),
    ]
    (group,) = fold(decisions, frozenset(), CUTS)
    assert group.decisions == 5
    assert group.approval_rate == Decimal("0.6000")
    # four scores: the median is the mean of the middle two, 600.0002 and 650
    assert group.median_score == Decimal("625.0001")
    assert group.mean_score == Decimal("637.5001")  # 2550.0003 / 4 = 637.500075
    assert (group.disbursed, group.ever_bad, group.written_off) == (3, 2, 1)
    assert (group.bad_rate, group.written_off_rate) == (Decimal("0.6667"), Decimal("0.3333"))


def test_a_median_between_two_scores_is_rounded_half_to_even():
    (group,) = fold([decision("600.0001"), decision("600.0002")], frozenset(), CUTS)
    assert group.median_score == Decimal("600.0002")  # 600.00015
    (group,) = fold([decision("600.0002"), decision("600.0003")], frozenset(), CUTS)
    assert group.median_score == Decimal("600.0002")  # 600.00025


def test_groups_without_scores_or_loans_have_no_such_figures():
    (group,) = fold([decision(None, DecisionOutcome.REJECTED)], frozenset(), CUTS)
    assert (group.mean_score, group.median_score) == (None, None)
    assert (group.bad_rate, group.written_off_rate) == (None, None)
    bands = frozenset({DecisionGrouping.SCORE_BAND})
    by_band = fold([decision("610"), decision(None)], bands, CUTS)
    assert [g.key.band for g in by_band] == [None, 1]  # without a score first
