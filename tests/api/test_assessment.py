"""Assessments on decisions: stored, returned, audited, checked against the product's policy."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import text

from graph.ids import to_global_id
from lending.access import Role
from tests.dbfixtures import gql, http_client
from tests.factories import create_application, create_product

ASSESSMENT_FIELDS = "score model factors { name contribution detail } evidence"

DECIDE = f"""
mutation Decide($input: DecideApplicationInput!) {{
  decideApplication(input: $input) {{
    application {{ id status version }}
    decision {{ id outcome decidedBy assessment {{ {ASSESSMENT_FIELDS} }} }}
    loan {{ id status }}
    userErrors {{ code field message }}
    replayed
  }}
}}
"""

APPLICATION = f"""
query One($id: ID!) {{
  application(id: $id) {{
    status version
    decisions {{ id outcome assessment {{ {ASSESSMENT_FIELDS} }} }}
    latestDecision {{ outcome assessment {{ score }} }}
  }}
}}
"""

DECISION_NODE = f"""
query Node($id: ID!) {{
  node(id: $id) {{ ... on Decision {{ outcome assessment {{ {ASSESSMENT_FIELDS} }} }} }}
}}
"""

TRAIL = """
query Trail($id: ID!) {
  auditTrail(entityId: $id, first: 100) { edges { node { action actor after } } }
}
"""

FILTERED = """
query Filtered($filter: ApplicationFilterInput) {
  applications(first: 100, filter: $filter) { totalCount edges { node { id } } }
}
"""

FACTORS = [
    {"name": "debt_to_income", "contribution": "-35.5", "detail": "DTI of 41 %"},
    {"name": "payment_history", "contribution": "62.25", "detail": None},
    {"name": "employment_years", "contribution": "12", "detail": "Eight years at one employer"},
]
EVIDENCE = ["doc:payslip-2026-10", "bureau:experian:4711"]


def assessment(**overrides: object) -> dict[str, object]:
    """A valid assessment input, with overrides."""
    return {
        "score": "712.5",
        "model": "credit-score@2.1",
        "factors": FACTORS,
        "evidence": EVIDENCE,
    } | overrides


def decide_input(application_id: int, outcome: str = "APPROVED", **overrides: object):
    return {
        "applicationId": to_global_id("LoanApplication", application_id),
        "outcome": outcome,
        "reason": f"{outcome.title()} on the assessment.",
    } | overrides


COUNTS = text(
    "SELECT (SELECT count(*) FROM decisions), (SELECT count(*) FROM assessment_factors), "
    "(SELECT count(*) FROM loans), (SELECT count(*) FROM audit_events), "
    "(SELECT count(*) FROM idempotency_keys)"
)


async def row_counts(engine) -> tuple[int, ...]:
    async with engine.connect() as connection:
        return tuple((await connection.execute(COUNTS)).one())


async def application_row(engine, application_id: int):
    async with engine.connect() as connection:
        return (
            await connection.execute(
                text("SELECT status, version FROM loan_applications WHERE id = :id"),
                {"id": application_id},
            )
        ).one()


def ok(body, name="decideApplication"):
    assert "errors" not in body, body
    payload = body["data"][name]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


def errors_of(body, name="decideApplication"):
    assert "errors" not in body, body
    return [(e["code"], e["field"]) for e in body["data"][name]["userErrors"]]


@pytest.fixture
async def product(engine):
    return await create_product(engine)


EXPECTED = {
    "score": "712.5000",
    "model": "credit-score@2.1",
    "factors": [
        {"name": "debt_to_income", "contribution": "-35.5000", "detail": "DTI of 41 %"},
        {"name": "payment_history", "contribution": "62.2500", "detail": None},
        {
            "name": "employment_years",
            "contribution": "12.0000",
            "detail": "Eight years at one employer",
        },
    ],
    "evidence": EVIDENCE,
}


def numeric(assessed: dict) -> dict:
    """An assessment with its numbers as Decimals, so that 712.5 and 712.5000 compare equal."""
    return assessed | {
        "score": Decimal(assessed["score"]),
        "factors": [f | {"contribution": Decimal(f["contribution"])} for f in assessed["factors"]],
    }


async def test_an_assessment_is_stored_returned_and_audited(
    client, per_field_client, engine, product
):
    # given a submitted application
    application = await create_application(engine)
    # when it is approved with an assessment
    payload = ok(
        await gql(
            client,
            DECIDE,
            {"input": decide_input(application.id, assessment=assessment())},
        )
    )
    # then the payload carries the assessment, factors in the order given
    decision = payload["decision"]
    assert decision["outcome"] == "APPROVED"
    assert decision["decidedBy"] == "admin"
    assert decision["assessment"] == EXPECTED
    assert payload["loan"]["status"] == "APPROVED"

    # and a fresh read (compiled and per field, by the application and by the node) agrees
    app_gid = to_global_id("LoanApplication", application.id)
    for reader in (client, per_field_client):
        read = (await gql(reader, APPLICATION, {"id": app_gid}))["data"]["application"]
        assert read["status"] == "APPROVED"
        [stored] = read["decisions"]
        assert stored["assessment"] == EXPECTED
        assert read["latestDecision"]["assessment"] == {"score": "712.5000"}
        node = (await gql(reader, DECISION_NODE, {"id": decision["id"]}))["data"]["node"]
        assert node["assessment"] == EXPECTED

    # and the rows hold it: score, model and evidence on the decision, the factors in a table
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT id, score, model, evidence FROM decisions WHERE application_id = :a"),
                {"a": application.id},
            )
        ).one()
        factors = (
            await connection.execute(
                text(
                    "SELECT position, name, contribution, detail FROM assessment_factors "
                    "WHERE decision_id = :d ORDER BY position"
                ),
                {"d": row.id},
            )
        ).all()
    assert (row.score, row.model, row.evidence) == (
        Decimal("712.5"),
        "credit-score@2.1",
        EVIDENCE,
    )
    assert [tuple(f) for f in factors] == [
        (0, "debt_to_income", Decimal("-35.5"), "DTI of 41 %"),
        (1, "payment_history", Decimal("62.25"), None),
        (2, "employment_years", Decimal("12"), "Eight years at one employer"),
    ]

    # and the decision.recorded audit event has the assessment and its factors
    edges = (await gql(client, TRAIL, {"id": app_gid}))["data"]["auditTrail"]["edges"]
    [event] = [e["node"] for e in edges if e["node"]["action"] == "decision.recorded"]
    after = event["after"]
    assert event["actor"] == "admin"
    assert Decimal(after["score"]) == Decimal("712.5")
    assert after["model"] == "credit-score@2.1"
    assert after["evidence"] == EVIDENCE
    assert [
        (f["position"], f["name"], Decimal(f["contribution"]), f["detail"], f["decision_id"])
        for f in after["factors"]
    ] == [
        (0, "debt_to_income", Decimal("-35.5"), "DTI of 41 %", row.id),
        (1, "payment_history", Decimal("62.25"), None, row.id),
        (2, "employment_years", Decimal("12"), "Eight years at one employer", row.id),
    ]


@pytest.mark.parametrize("score", ["712.5", "7.125E+2", "712.50000"])
async def test_the_payload_spells_the_assessment_as_a_fresh_read_does(
    client, engine, product, score
):
    # found by these tests: the payload returned the score as sent (712.5), a fresh read as
    # stored (712.5000); the score and the contributions are now kept at 4 decimals
    application = await create_application(engine)
    payload = ok(
        await gql(
            client,
            DECIDE,
            {"input": decide_input(application.id, assessment=assessment(score=score))},
        )
    )
    read = await gql(client, APPLICATION, {"id": to_global_id("LoanApplication", application.id)})
    assert payload["decision"]["assessment"] == EXPECTED
    assert read["data"]["application"]["decisions"][0]["assessment"] == EXPECTED
    async with engine.connect() as connection:
        after = await connection.scalar(
            text("SELECT after FROM audit_events WHERE action = 'decision.recorded'")
        )
    assert after["score"] == "712.5000"
    assert [f["contribution"] for f in after["factors"]] == ["-35.5000", "62.2500", "12.0000"]


async def test_a_decision_without_an_assessment_still_works(client, engine, product):
    application = await create_application(engine)
    payload = ok(await gql(client, DECIDE, {"input": decide_input(application.id)}))
    assert payload["decision"]["assessment"] is None
    assert payload["application"]["status"] == "APPROVED"
    read = await gql(client, APPLICATION, {"id": to_global_id("LoanApplication", application.id)})
    assert read["data"]["application"]["decisions"][0]["assessment"] is None
    async with engine.connect() as connection:
        row = (await connection.execute(text("SELECT score, model, evidence FROM decisions"))).one()
        assert tuple(row) == (None, None, None)
        assert await connection.scalar(text("SELECT count(*) FROM assessment_factors")) == 0
        after = await connection.scalar(
            text("SELECT after FROM audit_events WHERE action = 'decision.recorded'")
        )
    assert after["score"] is None
    assert "factors" not in after


async def test_an_assessment_with_no_factors_or_evidence(client, engine, product):
    application = await create_application(engine)
    payload = ok(
        await gql(
            client,
            DECIDE,
            {
                "input": decide_input(
                    application.id,
                    "REJECTED",
                    assessment={"score": "0", "model": "rules@1"},
                )
            },
        )
    )
    assert numeric(payload["decision"]["assessment"]) == {
        "score": Decimal(0),
        "model": "rules@1",
        "factors": [],
        "evidence": [],
    }
    assert (await row_counts(engine))[:3] == (1, 0, 0)


async def test_an_approval_below_the_threshold_is_a_policy_violation(client, engine):
    # given a product that refers applications scoring below 600
    await create_product(engine, refer_below_score=Decimal("600"))
    body = await gql(client, "{ loanProducts { code referBelowScore assessmentRequired } }")
    assert body["data"]["loanProducts"] == [
        {"code": "PERSONAL-USD", "referBelowScore": "600.0000", "assessmentRequired": False}
    ]
    application = await create_application(engine)
    before = await row_counts(engine)
    # when an approval scoring 599.9999 is attempted
    body = await gql(
        client,
        DECIDE,
        {
            "input": decide_input(
                application.id, assessment=assessment(score="599.9999"), idempotencyKey="p-1"
            )
        },
    )
    # then it is refused, the message naming the threshold, and nothing is written
    assert errors_of(body) == [("POLICY_VIOLATION", ["input", "assessment", "score"])]
    [error] = body["data"]["decideApplication"]["userErrors"]
    assert "600" in error["message"]
    assert body["data"]["decideApplication"]["decision"] is None
    assert await row_counts(engine) == before
    assert tuple(await application_row(engine, application.id)) == ("SUBMITTED", 1)

    # and an approval without any assessment walks around nothing either
    body = await gql(client, DECIDE, {"input": decide_input(application.id)})
    assert errors_of(body) == [("POLICY_VIOLATION", ["input", "assessment"])]
    assert "600" in body["data"]["decideApplication"]["userErrors"][0]["message"]
    assert await row_counts(engine) == before

    # but exactly the threshold is enough
    payload = ok(
        await gql(
            client,
            DECIDE,
            {"input": decide_input(application.id, assessment=assessment(score="600"))},
        )
    )
    assert payload["application"]["status"] == "APPROVED"


@pytest.mark.parametrize("outcome", ["REFERRED", "REJECTED"])
async def test_referring_or_rejecting_below_the_threshold_is_allowed(client, engine, outcome):
    await create_product(engine, refer_below_score=Decimal("600"))
    application = await create_application(engine)
    payload = ok(
        await gql(
            client,
            DECIDE,
            {"input": decide_input(application.id, outcome, assessment=assessment(score="12.5"))},
        )
    )
    assert payload["decision"]["outcome"] == outcome
    assert Decimal(payload["decision"]["assessment"]["score"]) == Decimal("12.5")
    # and without an assessment too (the threshold only guards approvals)
    if outcome == "REFERRED":
        payload = ok(await gql(client, DECIDE, {"input": decide_input(application.id, "REJECTED")}))
        assert payload["application"]["status"] == "REJECTED"


@pytest.mark.parametrize("outcome", ["APPROVED", "REFERRED", "REJECTED"])
async def test_a_product_requiring_an_assessment_refuses_decisions_without_one(
    client, engine, outcome
):
    await create_product(engine, assessment_required=True)
    application = await create_application(engine)
    before = await row_counts(engine)
    body = await gql(client, DECIDE, {"input": decide_input(application.id, outcome)})
    assert errors_of(body) == [("POLICY_VIOLATION", ["input", "assessment"])]
    assert await row_counts(engine) == before
    assert tuple(await application_row(engine, application.id)) == ("SUBMITTED", 1)
    # with one, the decision is recorded
    ok(
        await gql(
            client,
            DECIDE,
            {"input": decide_input(application.id, outcome, assessment=assessment())},
        )
    )
    assert (await row_counts(engine))[:2] == (1, 3)


TOO_MANY_FACTORS = [{"name": f"f{n}", "contribution": "1"} for n in range(51)]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"score": "-1"}, ["input", "assessment", "score"]),
        ({"score": "1000.0001"}, ["input", "assessment", "score"]),
        ({"score": "12.34567"}, ["input", "assessment", "score"]),
        ({"score": "NaN"}, ["input", "assessment", "score"]),
        ({"score": "Infinity"}, ["input", "assessment", "score"]),
        ({"score": "high"}, ["input", "assessment", "score"]),
        ({"score": 700.5}, ["input", "assessment", "score"]),  # a JSON float
        ({"factors": TOO_MANY_FACTORS}, ["input", "assessment", "factors"]),
        ({"evidence": [f"doc:{n}" for n in range(21)]}, ["input", "assessment", "evidence"]),
        ({"model": ""}, ["input", "assessment", "model"]),
        ({"model": "   "}, ["input", "assessment", "model"]),
        ({"model": "credit-score"}, ["input", "assessment", "model"]),
        ({"model": "credit score@2"}, ["input", "assessment", "model"]),
        ({"model": "m@" + "1" * 99}, ["input", "assessment", "model"]),
        (
            {"factors": [{"name": "", "contribution": "1"}]},
            ["input", "assessment", "factors", "0", "name"],
        ),
        (
            {"factors": [FACTORS[0], {"name": "x", "contribution": "1.00001"}]},
            ["input", "assessment", "factors", "1", "contribution"],
        ),
        ({"evidence": ["doc:1", ""]}, ["input", "assessment", "evidence", "1"]),
        ({"evidence": ["x" * 201]}, ["input", "assessment", "evidence", "0"]),
    ],
)
async def test_a_bad_assessment_is_refused_and_nothing_is_written(
    client, engine, product, overrides, field
):
    application = await create_application(engine)
    before = await row_counts(engine)
    body = await gql(
        client,
        DECIDE,
        {"input": decide_input(application.id, assessment=assessment(**overrides))},
    )
    assert errors_of(body) == [("VALIDATION_FAILED", field)]
    assert body["data"]["decideApplication"]["decision"] is None
    assert await row_counts(engine) == before
    assert tuple(await application_row(engine, application.id)) == ("SUBMITTED", 1)


async def test_the_edges_of_a_valid_assessment_are_accepted(client, engine, product):
    application = await create_application(engine)
    payload = ok(
        await gql(
            client,
            DECIDE,
            {
                "input": decide_input(
                    application.id,
                    assessment=assessment(
                        score="1000.0000",
                        model="m@" + "1" * 98,
                        factors=[{"name": f"f{n}", "contribution": "-0.0001"} for n in range(50)],
                        evidence=[f"doc:{n}" for n in range(20)],
                    ),
                )
            },
        )
    )
    assert Decimal(payload["decision"]["assessment"]["score"]) == 1000
    assert len(payload["decision"]["assessment"]["factors"]) == 50
    assert (await row_counts(engine))[:2] == (1, 50)


async def test_every_problem_of_a_decision_and_its_assessment_at_once(client, engine, product):
    application = await create_application(engine)
    body = await gql(
        client,
        DECIDE,
        {
            "input": decide_input(
                application.id, reason="", assessment=assessment(score="-1", model="nope")
            )
        },
    )
    assert sorted(errors_of(body)) == [
        ("VALIDATION_FAILED", ["input", "assessment", "model"]),
        ("VALIDATION_FAILED", ["input", "assessment", "score"]),
        ("VALIDATION_FAILED", ["input", "reason"]),
    ]
    assert (await row_counts(engine))[:2] == (0, 0)


async def test_a_decision_with_an_assessment_replays(client, engine, product):
    application = await create_application(engine)
    variables = {
        "input": decide_input(application.id, assessment=assessment(), idempotencyKey="d-1")
    }
    first = ok(await gql(client, DECIDE, variables))
    counts = await row_counts(engine)
    second = ok(await gql(client, DECIDE, variables))
    assert (first["replayed"], second["replayed"]) == (False, True)
    assert second["decision"]["id"] == first["decision"]["id"]
    assert second["decision"]["assessment"] == EXPECTED
    assert await row_counts(engine) == counts  # nothing new: no decision, factor, event
    # another assessment under the same key is refused
    other = {"input": variables["input"] | {"assessment": assessment(score="713")}}
    assert errors_of(await gql(client, DECIDE, other)) == [
        ("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])
    ]
    assert await row_counts(engine) == counts


async def ids_matching(reader, flt) -> set[str]:
    body = await gql(reader, FILTERED, {"filter": flt})
    assert "errors" not in body, body
    connection = body["data"]["applications"]
    assert connection["totalCount"] == len(connection["edges"])
    return {e["node"]["id"] for e in connection["edges"]}


@pytest.mark.parametrize("path", ["compiled", "per field"])
async def test_filters_on_the_latest_decision(app, api_keys, per_field_app, engine, product, path):
    served = app if path == "compiled" else per_field_app
    async with (
        http_client(served, api_keys[Role.UNDERWRITER]) as underwriter,
        http_client(served, api_keys[Role.ADMIN]) as admin,
    ):
        # given: A referred by the underwriter at 550, then approved by the admin at 720
        a = await create_application(engine)
        ok(
            await gql(
                underwriter,
                DECIDE,
                {"input": decide_input(a.id, "REFERRED", assessment=assessment(score="550"))},
            )
        )
        ok(
            await gql(
                admin, DECIDE, {"input": decide_input(a.id, assessment=assessment(score="720"))}
            )
        )
        # B rejected by the underwriter at 400; C approved by the admin without a score;
        # D referred by the underwriter at 650 and not decided since; E undecided
        b = await create_application(engine)
        ok(
            await gql(
                underwriter,
                DECIDE,
                {"input": decide_input(b.id, "REJECTED", assessment=assessment(score="400"))},
            )
        )
        c = await create_application(engine)
        ok(await gql(admin, DECIDE, {"input": decide_input(c.id)}))
        d = await create_application(engine)
        ok(
            await gql(
                underwriter,
                DECIDE,
                {"input": decide_input(d.id, "REFERRED", assessment=assessment(score="650"))},
            )
        )
        e = await create_application(engine)
        gid = {x: to_global_id("LoanApplication", x.id) for x in (a, b, c, d, e)}

        # then the latest decision counts: A is the admin's, at 720
        assert await ids_matching(admin, {"decidedBy": "admin"}) == {gid[a], gid[c]}
        assert await ids_matching(admin, {"decidedBy": "underwriter"}) == {gid[b], gid[d]}
        assert await ids_matching(admin, {"decidedBy": "nobody"}) == set()
        assert await ids_matching(admin, {"scoreMin": "700"}) == {gid[a]}
        assert await ids_matching(admin, {"scoreMin": "720.0000"}) == {gid[a]}
        assert await ids_matching(admin, {"scoreMin": "720.0001"}) == set()
        assert await ids_matching(admin, {"scoreMax": "600"}) == {gid[b]}  # not A's 550
        assert await ids_matching(admin, {"scoreMin": "500", "scoreMax": "700"}) == {gid[d]}
        assert await ids_matching(admin, {"scoreMin": "0"}) == {gid[a], gid[b], gid[d]}
        assert await ids_matching(admin, {"decidedBy": "underwriter", "scoreMin": "500"}) == {
            gid[d]
        }
        assert await ids_matching(admin, {"decidedBy": "underwriter", "status": ["IN_REVIEW"]}) == {
            gid[d]
        }
        assert len(await ids_matching(admin, None)) == 5


@pytest.mark.parametrize("score", ["NaN", "Infinity", "1E+999999999"])
async def test_a_score_filter_beyond_any_number_is_a_client_error(client, score):
    body = await gql(
        client,
        "query($s: Decimal!) { applications(filter: {scoreMin: $s}) { totalCount } }",
        {"s": score},
    )
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "scoreMin" in error["message"]
