"""The clients frontends subscribe with, in Node: graphql-ws, and Apollo Client's GraphQLWsLink
and HttpLink (which sends a subscription over HTTP as multipart/mixed). Each must receive an
application's SUBMITTED and DECIDED events, with the application as the event delivers it.

Their packages come from the npm registry into tests/e2e/clients/node_modules (`make e2e`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Demo, ask

CLIENTS = Path(__file__).resolve().parent / "clients"
KEY = "lnd_demo_admin"
APPLY = """mutation($email: String!) { applyForLoan(input: {applicant: {fullName: "Yaw Boateng",
  email: $email}, productCode: "PERSONAL-USD", amount: "4000", termMonths: 12}) {
  application { id } userErrors { code } } }"""
REJECT = """mutation($id: ID!) { decideApplication(input: {applicationId: $id,
  outcome: "REJECTED", reason: "Income not verified"}) { userErrors { code } } }"""


def without_typename(value: Any) -> Any:
    """``value`` without the ``__typename`` Apollo Client adds to every object for its cache."""
    if isinstance(value, dict):
        return {k: without_typename(v) for k, v in value.items() if k != "__typename"}
    if isinstance(value, list):
        return [without_typename(v) for v in value]
    return value


@pytest.mark.parametrize("client", ["graphql-ws", "apollo-ws", "apollo-http"])
async def test_a_frontend_client_receives_submitted_and_decided(demo: Demo, client: str) -> None:
    node = shutil.which("node")
    assert node is not None, "make e2e installs Node"
    process = await asyncio.create_subprocess_exec(
        node,
        str(CLIENTS / "subscribe.mjs"),
        client,
        f"{demo.url}/graphql",
        KEY,
        "1000",
        cwd=CLIENTS,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            assert (await process.stdout.readline()).strip() == b"subscribed"
            await asyncio.sleep(1)  # its subscription reaches the server
            # when an application is submitted and then decided
            applied = await ask(demo, APPLY, {"email": f"yaw.{client}@example.com"})
            app_id = applied["applyForLoan"]["application"]["id"]
            decided = await ask(demo, REJECT, {"id": app_id})
            assert decided["decideApplication"]["userErrors"] == []
            # then the client receives both, each carrying the application as it then was
            heard: list[dict[str, Any]] = []
            while len(heard) < 2:
                line = json.loads(await process.stdout.readline())
                assert "failure" not in line, line
                assert line["errors"] is None, line
                event = line["data"]["loanEvents"]
                if event["applicationId"] == app_id:
                    heard.append(without_typename(event))
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
    assert heard == [
        {
            "type": "SUBMITTED",
            "applicationId": app_id,
            "application": {"status": "SUBMITTED", "decisions": []},
        },
        {
            "type": "DECIDED",
            "applicationId": app_id,
            "application": {"status": "REJECTED", "decisions": [{"outcome": "REJECTED"}]},
        },
    ]
