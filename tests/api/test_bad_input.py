"""Bad input: a typed userError with the right code and field, nothing written, never a 500."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import text

from graph.ids import to_global_id
from tests.api.operations import APPLY, DECIDE, WITHDRAW, apply_input
from tests.dbfixtures import gql
from tests.factories import create_application, create_product, decide

COUNTS = text(
    "SELECT (SELECT count(*) FROM applicants), (SELECT count(*) FROM loan_applications), "
    "(SELECT count(*) FROM decisions), (SELECT count(*) FROM loans)"
)


async def row_counts(engine) -> tuple[int, ...]:
    async with engine.connect() as connection:
        return tuple((await connection.execute(COUNTS)).one())


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def spliced(gid: str) -> str:
    """The id with a character base64 skips inside it."""
    return gid[:4] + "!" + gid[4:]


@pytest.fixture
async def product(engine):
    return await create_product(engine)


def errors_of(body, mutation):
    assert "errors" not in body, body
    payload = body["data"][mutation]
    return [(e["code"], e["field"]) for e in payload["userErrors"]], payload


AMOUNT = ["input", "amount"]


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("-100", "VALIDATION_FAILED"),
        ("0", "VALIDATION_FAILED"),
        ("ten thousand", "VALIDATION_FAILED"),
        ("NaN", "VALIDATION_FAILED"),
        ("Infinity", "VALIDATION_FAILED"),
        ("1e400", "VALIDATION_FAILED"),
        ("10000.001", "VALIDATION_FAILED"),
        (10000.5, "VALIDATION_FAILED"),  # a JSON float cannot carry an exact amount
        # other spellings of 10000, which Decimal() reads: an amount has one spelling
        ("10_000", "VALIDATION_FAILED"),
        ("١٠٠٠٠", "VALIDATION_FAILED"),
        ("１００００", "VALIDATION_FAILED"),
        (" 10000 ", "VALIDATION_FAILED"),
        ("-0", "VALIDATION_FAILED"),
        ("999.99", "AMOUNT_OUT_OF_RANGE"),
        ("50000.01", "AMOUNT_OUT_OF_RANGE"),
    ],
)
async def test_bad_amounts(client, engine, product, amount, code):
    body = await gql(client, APPLY, {"input": apply_input(amount=amount)})
    errors, payload = errors_of(body, "applyForLoan")
    assert errors == [(code, AMOUNT)]
    assert payload["application"] is None
    assert await row_counts(engine) == (0, 0, 0, 0)


async def test_bad_amount_written_inline_in_the_query(client, engine, product):
    query = (
        APPLY.replace("$input: ApplyForLoanInput!", "")
        .replace(
            "input: $input",
            'input: {applicant: {fullName: "A B", email: "a@b.co"}, productCode: "PERSONAL-USD", '
            'amount: "NaN", termMonths: 12}',
        )
        .replace("mutation Apply()", "mutation Apply")
    )
    errors, _ = errors_of(await gql(client, query), "applyForLoan")
    assert errors == [("VALIDATION_FAILED", AMOUNT)]


async def test_integer_amount_is_accepted(client, product):
    errors, payload = errors_of(
        await gql(client, APPLY, {"input": apply_input(amount=12000)}), "applyForLoan"
    )
    assert errors == []
    assert payload["application"]["amountRequested"] == "12000.00"


@pytest.mark.parametrize("term", [5, 61, 0, -12])
async def test_term_out_of_range(client, engine, product, term):
    errors, _ = errors_of(
        await gql(client, APPLY, {"input": apply_input(termMonths=term)}), "applyForLoan"
    )
    assert errors == [("TERM_OUT_OF_RANGE", ["input", "termMonths"])]
    assert await row_counts(engine) == (0, 0, 0, 0)


async def test_unknown_product(client, engine, product):
    errors, _ = errors_of(
        await gql(client, APPLY, {"input": apply_input(productCode="NOPE")}), "applyForLoan"
    )
    assert errors == [("NOT_FOUND", ["input", "productCode"])]
    assert await row_counts(engine) == (0, 0, 0, 0)


async def test_inactive_product(client, engine):
    await create_product(engine, code="OLD-USD", active=False)
    errors, _ = errors_of(
        await gql(client, APPLY, {"input": apply_input(productCode="OLD-USD")}), "applyForLoan"
    )
    assert errors == [("PRODUCT_INACTIVE", ["input", "productCode"])]
    assert await row_counts(engine) == (0, 0, 0, 0)


@pytest.mark.parametrize("name", ["", "   ", "x" * 10_000, "Tab\there"])
async def test_bad_names(client, engine, product, name):
    applicant = {"fullName": name, "email": "someone@example.com"}
    errors, _ = errors_of(
        await gql(client, APPLY, {"input": apply_input(applicant=applicant)}), "applyForLoan"
    )
    assert errors == [("VALIDATION_FAILED", ["input", "applicant", "fullName"])]
    assert await row_counts(engine) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    "email", ["", "not-an-email", "a@b", "a b@example.com", "@example.com", "a@@example.com"]
)
async def test_malformed_email(client, engine, product, email):
    applicant = {"fullName": "Valid Name", "email": email}
    errors, _ = errors_of(
        await gql(client, APPLY, {"input": apply_input(applicant=applicant)}), "applyForLoan"
    )
    assert errors == [("VALIDATION_FAILED", ["input", "applicant", "email"])]
    assert await row_counts(engine) == (0, 0, 0, 0)


async def test_every_bad_field_is_reported_at_once(client, engine, product):
    body = await gql(
        client,
        APPLY,
        {
            "input": apply_input(
                applicant={"fullName": "", "email": "nope"}, amount="-1", termMonths=1000
            )
        },
    )
    errors, _ = errors_of(body, "applyForLoan")
    assert sorted(errors) == sorted(
        [
            ("VALIDATION_FAILED", ["input", "applicant", "fullName"]),
            ("VALIDATION_FAILED", ["input", "applicant", "email"]),
            ("VALIDATION_FAILED", AMOUNT),
            ("TERM_OUT_OF_RANGE", ["input", "termMonths"]),
        ]
    )


def decide_input(application_id: str, **overrides: object) -> dict[str, object]:
    return {"applicationId": application_id, "outcome": "APPROVED", "reason": "OK"} | overrides


@pytest.mark.parametrize(
    ("make_id", "code"),
    [
        (lambda key: to_global_id("LoanApplication", 999_999), "NOT_FOUND"),
        (lambda key: to_global_id("Loan", key), "VALIDATION_FAILED"),
        (lambda key: "%%% not base64 %%%", "VALIDATION_FAILED"),
        (lambda key: base64.b64encode(b"LoanApplication:abc").decode(), "VALIDATION_FAILED"),
        (lambda key: "", "VALIDATION_FAILED"),
        # other spellings of the real id: digits not ASCII, junk inside, spaces around
        (lambda key: b64(f"LoanApplication:{key}".translate(ARABIC_INDIC)), "VALIDATION_FAILED"),
        (lambda key: spliced(to_global_id("LoanApplication", key)), "VALIDATION_FAILED"),
        (lambda key: f" {to_global_id('LoanApplication', key)} ", "VALIDATION_FAILED"),
    ],
)
@pytest.mark.parametrize(
    ("mutation", "operation"), [("decideApplication", DECIDE), ("withdrawApplication", WITHDRAW)]
)
async def test_bad_application_ids(client, engine, product, make_id, code, mutation, operation):
    application = await create_application(engine)
    before = await row_counts(engine)
    body = await gql(
        client,
        operation,
        {
            "input": decide_input(make_id(application.id))
            if mutation == "decideApplication"
            else {"applicationId": make_id(application.id)}
        },
    )
    errors, _ = errors_of(body, mutation)
    assert errors == [(code, ["input", "applicationId"])]
    assert await row_counts(engine) == before


async def test_unknown_outcome(client, engine, product):
    application = await create_application(engine)
    gid = to_global_id("LoanApplication", application.id)
    body = await gql(client, DECIDE, {"input": decide_input(gid, outcome="MAYBE")})
    errors, _ = errors_of(body, "decideApplication")
    assert errors == [("VALIDATION_FAILED", ["input", "outcome"])]
    assert await row_counts(engine) == (1, 1, 0, 0)


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"reason": ""}, "VALIDATION_FAILED", "reason"),
        ({"reason": "x" * 2001}, "VALIDATION_FAILED", "reason"),
        ({"approvedAmount": "0.5"}, "AMOUNT_OUT_OF_RANGE", "approvedAmount"),
        ({"approvedAmount": "1000.123"}, "VALIDATION_FAILED", "approvedAmount"),
        ({"annualInterestRate": "-1"}, "VALIDATION_FAILED", "annualInterestRate"),
        ({"termMonths": 600}, "TERM_OUT_OF_RANGE", "termMonths"),
        ({"outcome": "REJECTED", "approvedAmount": "2000"}, "VALIDATION_FAILED", "approvedAmount"),
    ],
)
async def test_bad_decisions(client, engine, product, overrides, code, field):
    application = await create_application(engine)
    gid = to_global_id("LoanApplication", application.id)
    body = await gql(client, DECIDE, {"input": decide_input(gid, **overrides)})
    errors, _ = errors_of(body, "decideApplication")
    assert errors == [(code, ["input", field])]
    assert await row_counts(engine) == (1, 1, 0, 0)


@pytest.mark.parametrize("final", ["APPROVED", "REJECTED"])
@pytest.mark.parametrize("outcome", ["APPROVED", "REJECTED", "REFERRED"])
async def test_deciding_a_final_application_is_an_invalid_transition(
    client, engine, product, final, outcome
):
    application = await create_application(engine)
    await decide(engine, application.id, final)
    before = await row_counts(engine)
    gid = to_global_id("LoanApplication", application.id)
    body = await gql(client, DECIDE, {"input": decide_input(gid, outcome=outcome)})
    errors, payload = errors_of(body, "decideApplication")
    assert errors == [("INVALID_TRANSITION", None)]
    assert payload["decision"] is None
    assert await row_counts(engine) == before  # no decision row written


async def test_withdrawing_twice_is_an_invalid_transition(client, engine, product):
    application = await create_application(engine)
    gid = to_global_id("LoanApplication", application.id)
    first = await gql(client, WITHDRAW, {"input": {"applicationId": gid, "reason": "Changed mind"}})
    _, payload = errors_of(first, "withdrawApplication")
    assert payload["application"]["status"] == "WITHDRAWN"
    assert payload["application"]["withdrawalReason"] == "Changed mind"
    second = await gql(client, WITHDRAW, {"input": {"applicationId": gid}})
    errors, _ = errors_of(second, "withdrawApplication")
    assert errors == [("INVALID_TRANSITION", None)]


async def test_a_withdrawn_application_frees_the_applicant_to_apply_again(client, engine, product):
    application = await create_application(engine, email="again@example.com")
    gid = to_global_id("LoanApplication", application.id)
    await gql(client, WITHDRAW, {"input": {"applicationId": gid}})
    body = await gql(
        client,
        APPLY,
        {"input": apply_input(applicant={"fullName": "Again", "email": "AGAIN@example.com"})},
    )
    errors, payload = errors_of(body, "applyForLoan")
    assert errors == []
    assert payload["application"]["applicant"]["email"] == "again@example.com"
    assert await row_counts(engine) == (1, 2, 0, 0)


PREVIEW_TERMS = """query($currency: String!) { previewSchedule(input: { amount: "100",
  termMonths: 12, terms: { amortization: ANNUITY, annualInterestRate: "9", currency: $currency,
  dayCount: THIRTY_360, frequency: MONTHLY } }) { schedule { totalPayable }
  userErrors { code field message } } }"""


@pytest.mark.parametrize("currency", ["XX\r", "", "usd", "XYZ", "USD "])
async def test_an_unknown_currency_in_explicit_terms_is_a_validation_error(client, currency):
    # found by schemathesis and by the fault suite's fuzzer: it was an internal error
    body = await gql(client, PREVIEW_TERMS, {"currency": currency})
    assert "errors" not in body, body
    payload = body["data"]["previewSchedule"]
    assert payload["schedule"] is None
    [error] = payload["userErrors"]
    assert error["code"] == "VALIDATION_FAILED"
    assert error["field"] == ["input", "terms", "currency"]
    assert "USD" in error["message"]


@pytest.mark.parametrize("amount", ["1E+999999999", "1E-999999999", "-1E+40", "NaN", "Infinity"])
async def test_an_amount_filter_beyond_any_amount_is_a_client_error(client, amount):
    # found by the fault suite's fuzzer: PostgreSQL's numeric overflowed, an internal error
    query = "query($a: Decimal!) { applications(filter: { amountMin: $a }) { totalCount } }"
    body = await gql(client, query, {"a": amount})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", body
    assert "amountMin" in error["message"]


async def test_a_cursor_with_an_absurd_amount_is_refused_at_once(client):
    # a forged cursor: 1E-999999999 would take the database driver minutes to encode
    raw = json.dumps(["AMOUNT_REQUESTED:DESC", "1E-999999999", 1]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    query = (
        "query($after: String!) { applications(after: $after, "
        "orderBy: { field: AMOUNT_REQUESTED }) { totalCount } }"
    )
    body = await gql(client, query, {"after": cursor})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "`after` is not a valid cursor."
