"""One spelling for every value a read takes: amounts and name parts mean what they say."""

from __future__ import annotations

import pytest

from tests.dbfixtures import both_paths
from tests.factories import create_application, create_product

AMOUNT_FILTER = "query($a: Decimal!) { applications(filter: { amountMin: $a }) { totalCount } }"
NAMES = """
query($part: String!) {
  applicants(filter: { nameContains: $part }) { edges { node { fullName } } }
}
"""


@pytest.mark.parametrize("amount", ["1_000", "١٠٠٠", "１０００", " 1000 ", "-0", "-0.00"])
async def test_a_misspelt_amount_filter_is_refused(client, per_field_client, engine, amount):
    await create_product(engine)
    await create_application(engine)
    body = await both_paths(client, per_field_client, AMOUNT_FILTER, {"a": amount})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert error["message"].startswith("`amountMin`: ")
    assert "ASCII digits" in error["message"]


@pytest.mark.parametrize(
    ("part", "found"),
    [
        ("n_L", ["Ann_Lee"]),  # `_` is a character, not ILIKE's any-one-character
        ("_", ["Ann_Lee"]),
        ("n%L", ["Ann%Lee"]),
        ("\\", ["Ann\\Lee"]),
        ("nXL", ["AnnXLee"]),
    ],
)
async def test_name_contains_matches_the_characters_given(
    client, per_field_client, engine, part, found
):
    # given applicants whose names differ in one character
    await create_product(engine)
    for name in ("Ann_Lee", "AnnXLee", "Ann%Lee", "Ann\\Lee"):
        await create_application(engine, full_name=name)

    # when they are filtered by a part holding a LIKE wildcard
    body = await both_paths(client, per_field_client, NAMES, {"part": part})

    # then only the names holding that very character match, on both paths
    names = [e["node"]["fullName"] for e in body["data"]["applicants"]["edges"]]
    assert names == found
