"""The agent walkthrough from the foundation issue, end to end over HTTP."""

from __future__ import annotations

from sqlalchemy import text

from tests.api.operations import APPLICATION, APPLY, DECIDE, apply_input
from tests.dbfixtures import gql
from tests.factories import create_product


async def test_apply_refer_duplicate_then_approve(client, engine):
    # given a personal loan product
    await create_product(engine)

    # when John Mensah applies for 10,000
    applied = (await gql(client, APPLY, {"input": apply_input()}))["data"]["applyForLoan"]
    # then the application is SUBMITTED
    assert applied["userErrors"] == []
    application = applied["application"]
    assert application["status"] == "SUBMITTED"
    assert application["amountRequested"] == "10000.00"
    assert application["applicant"] == {
        "fullName": "John Mensah",
        "email": "john.mensah@example.com",
    }
    assert application["availableActions"] == ["APPROVE", "REJECT", "REFER", "WITHDRAW"]

    # when it is referred for manual verification
    referred = (
        await gql(
            client,
            DECIDE,
            {
                "input": {
                    "applicationId": application["id"],
                    "outcome": "REFERRED",
                    "reason": "Needs manual verification",
                }
            },
        )
    )["data"]["decideApplication"]
    # then it is IN_REVIEW and no loan exists
    assert referred["userErrors"] == []
    assert referred["application"]["status"] == "IN_REVIEW"
    assert referred["application"]["version"] == 2
    assert referred["decision"]["outcome"] == "REFERRED"
    assert referred["decision"]["reason"] == "Needs manual verification"
    assert referred["loan"] is None

    # when the same email (other case) applies again while that one is open
    again = (
        await gql(
            client,
            APPLY,
            {
                "input": apply_input(
                    applicant={"fullName": "John Mensah", "email": "John.Mensah@Example.com"}
                )
            },
        )
    )["data"]["applyForLoan"]
    # then it is refused as a duplicate and nothing is written
    assert again["application"] is None
    assert [e["code"] for e in again["userErrors"]] == ["DUPLICATE_OPEN_APPLICATION"]
    assert again["userErrors"][0]["field"] == ["input", "applicant", "email"]

    # when it is approved
    approved = (
        await gql(
            client,
            DECIDE,
            {
                "input": {
                    "applicationId": application["id"],
                    "outcome": "APPROVED",
                    "reason": "Verified",
                }
            },
        )
    )["data"]["decideApplication"]
    # then a loan exists with the requested terms and the product's rate
    assert approved["userErrors"] == []
    assert approved["application"]["status"] == "APPROVED"
    assert approved["application"]["availableActions"] == []
    loan = approved["loan"]
    assert loan["status"] == "APPROVED"
    assert loan["principal"] == "10000.00"
    assert loan["currency"] == "USD"
    assert loan["annualInterestRate"] == "12.500000"
    assert loan["termMonths"] == 24
    assert loan["application"]["id"] == application["id"]
    assert loan["applicant"]["email"] == "john.mensah@example.com"

    # and the application reads back with both decisions, oldest first
    read = (await gql(client, APPLICATION, {"id": application["id"]}))["data"]["application"]
    assert [d["outcome"] for d in read["decisions"]] == ["REFERRED", "APPROVED"]
    assert read["latestDecision"] == {"outcome": "APPROVED"}
    assert read["loan"] == {"status": "APPROVED", "principal": "10000.00"}
    async with engine.connect() as connection:
        counts = (
            await connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM applicants), (SELECT count(*) FROM "
                    "loan_applications), (SELECT count(*) FROM decisions), "
                    "(SELECT count(*) FROM loans)"
                )
            )
        ).one()
    assert tuple(counts) == (1, 1, 2, 1)
