"""Every operation of the README runs, in the README's order, against the demo data, with its
variables taken from the answers before it and the key of the role the text names, and
succeeds: no errors, no userErrors, and the statuses the text promises. (Its subscription is
run by the event tests; here it is only parsed.) GraphiQL opens on the README's first query.

Before, the examples were validated against the schema but never run, and the servicing one
failed as written (a fixed `disbursedOn` before the approval date: VALIDATION_FAILED, then
INVALID_TRANSITION on the payment).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from graphql import OperationDefinitionNode, OperationType, parse

from db.session import create_sessionmaker
from graph.server.ide import EXAMPLE_QUERY
from lending import clock
from lending.access import Role
from lending.services.demo import seed_demo
from tests.dbfixtures import http_client

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```graphql\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


# The role whose key each operation needs, as the README's text names it.
ROLE_OF = {
    "Pipeline": Role.ADMIN,
    "Apply": Role.AGENT,
    "Refer": Role.UNDERWRITER,
    "Decide": Role.UNDERWRITER,
    "Disburse": Role.SERVICER,
    "Pay": Role.SERVICER,
    "Arrears": Role.SERVICER,
    "NotRemindedThisWeek": Role.AGENT,
    "Remind": Role.AGENT,
    "Delivered": Role.SERVICER,
    "Quote": Role.SERVICER,
    "Settle": Role.SERVICER,
    "Portfolio": Role.SERVICER,
    "ScoreBands": Role.UNDERWRITER,
    "WhatIfApproved": Role.UNDERWRITER,
    # A borrower's own query; here as staff (the borrowers' tests sign in as borrowers).
    "MyLoans": Role.AGENT,
}


def operations() -> list[tuple[str, str, OperationType]]:
    """(name, block, type) of every named operation of the README's GraphQL blocks, in order."""
    found = []
    for block in BLOCKS:
        for definition in parse(block).definitions:
            if isinstance(definition, OperationDefinitionNode) and definition.name:
                found.append((definition.name.value, block, definition.operation))
    return found


def first_node(connection: dict[str, Any], **where: Any) -> dict[str, Any]:
    return next(
        edge["node"]
        for edge in connection["edges"]
        if all(edge["node"].get(k) == v for k, v in where.items())
    )


def variables_for(name: str, answers: dict[str, Any]) -> dict[str, Any]:
    """The variables of operation ``name``, from the answers of the operations before it."""
    today = clock.today()
    apply = answers.get("Apply", {}).get("applyForLoan", {})
    loan = answers.get("Decide", {}).get("decideApplication", {}).get("loan") or {}
    by_name: dict[str, Any] = {
        "Refer": lambda: {"id": apply["application"]["id"]},
        "Decide": lambda: {"id": apply["application"]["id"]},
        "Disburse": lambda: {"loanId": loan["id"]},
        "Pay": lambda: {"loanId": loan["id"]},
        "Arrears": lambda: {"today": today.isoformat()},
        "NotRemindedThisWeek": lambda: {
            "today": today.isoformat(),
            "weekStart": (today - timedelta(days=7)).isoformat(),
        },
        "Remind": lambda: {
            "installmentId": first_node(answers["NotRemindedThisWeek"]["overdueInstallments"])["id"]
        },
        "Delivered": lambda: {"reminderId": answers["Remind"]["requestReminder"]["reminder"]["id"]},
        "Quote": lambda: {"loanId": loan["id"]},
        "Settle": lambda: {
            "loanId": loan["id"],
            "amount": answers["Quote"]["loan"]["settlementQuote"]["amount"],
        },
        "Portfolio": lambda: {"asOf": today.isoformat()},
        "ScoreBands": lambda: {
            "from": (today - timedelta(days=730)).isoformat(),
            "to": today.isoformat(),
            "asOf": today.isoformat(),
        },
        "WhatIfApproved": lambda: {
            "id": first_node(answers["Pipeline"]["applications"], status="IN_REVIEW")["id"]
        },
    }
    return by_name[name]() if name in by_name else {}


def user_errors(data: dict[str, Any]) -> list[Any]:
    return [e for payload in data.values() if isinstance(payload, dict)
            for e in payload.get("userErrors", [])]  # fmt: skip


async def test_every_readme_operation_runs_in_order_and_succeeds(app, api_keys, engine) -> None:
    await seed_demo(create_sessionmaker(engine))
    answers: dict[str, Any] = {}
    subscriptions = []
    for name, block, kind in operations():
        if kind is OperationType.SUBSCRIPTION:
            subscriptions.append(name)
            continue
        body = {"query": block, "operationName": name, "variables": variables_for(name, answers)}
        async with http_client(app, api_keys[ROLE_OF[name]]) as client:
            response = await client.post("/graphql", json=body)
        assert response.status_code == 200, (name, response.text)
        answer = response.json()
        assert "errors" not in answer, (name, answer)
        assert user_errors(answer["data"]) == [], (name, answer)
        answers[name] = answer["data"]

    assert list(answers) == [
        "Pipeline", "Apply", "Refer", "Decide", "Disburse", "Pay", "Arrears",
        "NotRemindedThisWeek", "Remind", "Delivered", "Quote", "Settle", "Portfolio", "ScoreBands",
        "MyLoans", "WhatIfApproved",
    ]  # fmt: skip
    assert subscriptions == ["Watch"]
    assert answers["Apply"]["applyForLoan"]["application"]["status"] == "SUBMITTED"
    assert answers["Refer"]["decideApplication"]["application"]["status"] == "IN_REVIEW"
    assert answers["Decide"]["decideApplication"]["application"]["status"] == "APPROVED"
    assert answers["Disburse"]["disburseLoan"]["loan"]["status"] == "ACTIVE"
    assert answers["Arrears"]["overdueInstallments"]["edges"]
    assert answers["Delivered"]["reportReminderDelivery"]["reminder"]["status"] == "DELIVERED"
    assert answers["Settle"]["settleLoan"]["loan"]["status"] == "PAID_OFF"
    assert answers["WhatIfApproved"]["decideApplication"]["dryRun"] is True
    assert answers["MyLoans"]["viewer"]["role"] == "AGENT"
    kes, usd = answers["Portfolio"]["portfolio"]
    assert (kes["currency"], usd["currency"]) == ("KES", "USD")
    assert Decimal(usd["outstandingPrincipal"]) > 0
    assert Decimal("0") <= Decimal(usd["par90"]) <= Decimal(usd["par30"]) <= 1
    bands = [
        (g["scoreBand"]["lower"], g["badRate"])
        for g in answers["ScoreBands"]["decisionStats"]
        if g["model"] == "credit-score@3.2" and g["disbursed"]
    ]
    # the bad rate falls as the bands rise (the README's own loan, repaid, is in the middle)
    assert [lower for lower, _ in bands] == [None, "690", "740"]
    rates = [Decimal(rate) for _, rate in bands]
    assert rates == sorted(rates, reverse=True)
    assert (rates[0], rates[-1]) == (1, 0)


async def test_an_agent_key_may_not_decide_as_the_readme_says(app, api_keys, engine) -> None:
    await seed_demo(create_sessionmaker(engine))
    block = next(block for name, block, _ in operations() if name == "Apply")
    async with http_client(app, api_keys[Role.AGENT]) as agent:
        apply = {"query": block, "operationName": "Apply"}
        applied = (await agent.post("/graphql", json=apply)).json()
        app_id = applied["data"]["applyForLoan"]["application"]["id"]
        decide = {"query": block, "operationName": "Refer", "variables": {"id": app_id}}
        refused = (await agent.post("/graphql", json=decide)).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_graphiql_opens_on_the_readmes_first_query() -> None:
    name, block, _ = operations()[0]
    assert name == "Pipeline"
    assert EXAMPLE_QUERY.strip() == block.strip()
