"""Every operation of the README runs, in the README's order, against the demo data, with its
variables taken from the answers before it, and succeeds: no errors, no userErrors, and the
statuses the text promises.

Before, the examples were validated against the schema but never run, and the servicing one
failed as written (a fixed `disbursedOn` before the approval date: VALIDATION_FAILED, then
INVALID_TRANSITION on the payment).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from graphql import OperationDefinitionNode, parse

from db.session import create_sessionmaker
from lending import clock
from lending.demo import seed_demo

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = re.findall(r"```graphql\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


def operations() -> list[tuple[str, str]]:
    """(name, block) of every named operation of the README's GraphQL blocks, in order."""
    found = []
    for block in BLOCKS:
        for definition in parse(block).definitions:
            if isinstance(definition, OperationDefinitionNode) and definition.name:
                found.append((definition.name.value, block))
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
        "WhatIfApproved": lambda: {
            "id": first_node(answers["Pipeline"]["applications"], status="IN_REVIEW")["id"]
        },
    }
    return by_name[name]() if name in by_name else {}


def user_errors(data: dict[str, Any]) -> list[Any]:
    return [e for payload in data.values() if isinstance(payload, dict)
            for e in payload.get("userErrors", [])]  # fmt: skip


async def test_every_readme_operation_runs_in_order_and_succeeds(client, engine) -> None:
    await seed_demo(create_sessionmaker(engine))
    answers: dict[str, Any] = {}
    for name, block in operations():
        body = {"query": block, "operationName": name, "variables": variables_for(name, answers)}
        response = await client.post("/graphql", json=body)
        assert response.status_code == 200, (name, response.text)
        answer = response.json()
        assert "errors" not in answer, (name, answer)
        assert user_errors(answer["data"]) == [], (name, answer)
        answers[name] = answer["data"]

    assert list(answers) == [
        "Pipeline", "Apply", "Decide", "Disburse", "Pay", "Arrears", "NotRemindedThisWeek",
        "Remind", "Delivered", "Quote", "Settle", "WhatIfApproved",
    ]  # fmt: skip
    assert answers["Apply"]["applyForLoan"]["application"]["status"] == "SUBMITTED"
    assert answers["Decide"]["decideApplication"]["application"]["status"] == "APPROVED"
    assert answers["Disburse"]["disburseLoan"]["loan"]["status"] == "ACTIVE"
    assert answers["Arrears"]["overdueInstallments"]["edges"]
    assert answers["Delivered"]["reportReminderDelivery"]["reminder"]["status"] == "DELIVERED"
    assert answers["Settle"]["settleLoan"]["loan"]["status"] == "PAID_OFF"
    assert answers["WhatIfApproved"]["decideApplication"]["dryRun"] is True
