"""The MCP tool server, driven by the SDK's own client over streamable HTTP and over stdio.

Over HTTP the client talks to a real `lending serve` process; over stdio it starts `lending mcp`
itself, as a desktop agent would. Either way a tool call is a GraphQL request with the
caller's key, so what the database holds afterwards is asserted as for GraphQL.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from sqlalchemy import text

from db.session import create_engine, create_sessionmaker
from lending.access import Role
from lending.services import api_keys as key_service
from tests.servers import Servers, servers

AGENT_TOOLS = {
    "apply_for_loan",
    "withdraw_application",
    "request_reminder",
    "get_application",
    "list_applications",
    "get_loan",
    "overdue_installments",
    "audit_trail",
    "preview_schedule",
}
SERVICING = {
    "disburse_loan",
    "record_payment",
    "reverse_payment",
    "settle_loan",
    "cancel_loan",
    "write_off_loan",
    "report_reminder_delivery",
}


@pytest.fixture(scope="module")
async def server(server_url: str) -> AsyncIterator[tuple[Servers, dict[Role, str]]]:
    async with servers(server_url, "lending_mcp_test", count=1) as found:
        engine = create_engine(found.url, pool_size=1, max_overflow=0)
        keys: dict[Role, str] = {}
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                for role in (Role.AGENT, Role.UNDERWRITER, Role.SERVICER):
                    _, keys[role] = await key_service.create_key(
                        session, name=f"mcp-{role.value.lower()}", role=role
                    )
        finally:
            await engine.dispose()
        keys[Role.ADMIN] = found.key
        yield found, keys


@asynccontextmanager
async def http_client(port: int, key: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        transport = streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)
        async with Client(transport) as client:
            yield client


@asynccontextmanager
async def connect(transport: str, found: Servers, key: str) -> AsyncIterator[Client]:
    """An MCP client acting with ``key``: over HTTP to the server, or over stdio to its own."""
    if transport == "http":
        async with http_client(found.ports[0], key) as client:
            yield client
    else:
        async with Client(stdio(found.url, key)) as client:
            yield client


TRANSPORTS = pytest.mark.parametrize("transport", ["http", "stdio"])


def application_input(name: str, amount: str, **more: Any) -> dict[str, Any]:
    """The arguments of apply_for_loan for a new applicant called ``name``."""
    email = name.lower().replace(" ", ".") + "@example.com"
    return {
        "applicant": {"fullName": name, "email": email},
        "productCode": "PERSONAL-USD",
        "amount": amount,
        "termMonths": 12,
    } | more


def structured(result: Any) -> dict[str, Any]:
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


async def count(url: str, table: str) -> int:
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar())
    finally:
        await engine.dispose()


@TRANSPORTS
async def test_each_role_is_listed_the_tools_it_may_use(server, transport: str) -> None:
    found, keys = server
    listed = {}
    for role, key in keys.items():
        async with connect(transport, found, key) as client:
            listed[role] = {t.name for t in (await client.list_tools()).tools}
    assert listed[Role.AGENT] == AGENT_TOOLS
    assert "decide_application" not in listed[Role.AGENT]
    assert listed[Role.UNDERWRITER] == AGENT_TOOLS - {"request_reminder"} | {
        "decide_application",
        "cancel_loan",
    }
    assert listed[Role.SERVICER] == AGENT_TOOLS - {"apply_for_loan", "withdraw_application"} | {
        *SERVICING
    }
    assert listed[Role.ADMIN] == listed[Role.UNDERWRITER] | listed[Role.SERVICER] | {
        "request_reminder"
    }


@TRANSPORTS
async def test_the_lending_loop_through_tools(server, transport: str) -> None:
    found, keys = server
    async with connect(transport, found, keys[Role.AGENT]) as agent:
        applied = structured(
            await agent.call_tool(
                "apply_for_loan",
                application_input(f"Mia {transport}", "6000", idempotencyKey=f"apply-{transport}"),
            )
        )["data"]["applyForLoan"]
        assert applied["userErrors"] == []
        application = applied["application"]
        assert application["status"] == "SUBMITTED"
        # The agent is not listed the decision tool; called anyway, GraphQL refuses it.
        refused = await agent.call_tool(
            "decide_application",
            {"applicationId": application["id"], "outcome": "APPROVED", "reason": "mine"},
        )
        assert refused.is_error
        assert structured(refused)["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    decide = {
        "applicationId": application["id"],
        "outcome": "APPROVED",
        "reason": "Income verified",
        "approvedAmount": "5000",
    }
    async with connect(transport, found, keys[Role.UNDERWRITER]) as underwriter:
        loans_before = await count(found.url, "loans")
        audit_before = await count(found.url, "audit_events")
        rehearsed = await underwriter.call_tool("decide_application", {**decide, "dryRun": True})
        assert not rehearsed.is_error
        preview = structured(rehearsed)["data"]["decideApplication"]
        assert preview["dryRun"] is True
        assert preview["loan"]["principal"] == "5000.00"
        assert await count(found.url, "loans") == loans_before
        assert await count(found.url, "audit_events") == audit_before

        decided = structured(await underwriter.call_tool("decide_application", decide))
        payload = decided["data"]["decideApplication"]
        assert payload["dryRun"] is False
        assert payload["application"]["status"] == "APPROVED"
        loan = payload["loan"]
        assert {k: v for k, v in loan.items() if k not in ("id", "reference", "version")} == {
            k: v for k, v in preview["loan"].items() if k not in ("id", "reference", "version")
        }
        assert await count(found.url, "loans") == loans_before + 1

    async with connect(transport, found, keys[Role.SERVICER]) as servicer:
        disbursed = structured(await servicer.call_tool("disburse_loan", {"loanId": loan["id"]}))[
            "data"
        ]["disburseLoan"]
        assert disbursed["userErrors"] == []
        assert disbursed["loan"]["status"] == "ACTIVE"
        first = disbursed["loan"]["schedule"]["installments"][0]
        paid = structured(
            await servicer.call_tool(
                "record_payment",
                {
                    "loanId": loan["id"],
                    "amount": first["totalDue"],
                    "reference": "MCP-1",
                },
            )
        )["data"]["recordPayment"]
        assert paid["userErrors"] == []
        assert [a["installment"]["number"] for a in paid["payment"]["allocations"]] == [1]
        read = structured(await servicer.call_tool("get_loan", {"id": loan["id"]}))["data"]["loan"]
        assert read["status"] == "ACTIVE"
        assert read["schedule"]["installments"][0]["status"] == "PAID"
        assert [p["node"]["amount"] for p in read["payments"]["edges"]] == [first["totalDue"]]
        assert read["delinquency"]["daysPastDue"] == 0


async def test_bad_input_comes_back_as_user_errors(server) -> None:
    found, keys = server
    async with http_client(found.ports[0], keys[Role.UNDERWRITER]) as client:
        result = await client.call_tool(
            "decide_application",
            {"applicationId": "TG9hbkFwcGxpY2F0aW9uOjE", "outcome": "MAYBE", "reason": "?"},
        )
        assert result.is_error
        errors = structured(result)["data"]["decideApplication"]["userErrors"]
        assert [e["code"] for e in errors] == ["VALIDATION_FAILED"]
        assert errors[0]["field"] == ["input", "outcome"]
        # GraphQL would ignore a variable the operation does not declare; the tool refuses it.
        wrong = await client.call_tool("get_loan", {"loanId": "x"})
        assert wrong.is_error
        [error] = structured(wrong)["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "loanId" in error["message"]
        missing = await client.call_tool("get_loan", {})
        assert missing.is_error
        assert structured(missing)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        with pytest.raises(MCPError, match="no tool"):
            await client.call_tool("drop_tables", {})
        # the catalogue's subscription is a stream, not a tool: refused by name, cleanly
        with pytest.raises(MCPError, match="no tool"):
            await client.call_tool("loan_events", {})


async def test_a_wrong_key_is_refused(server) -> None:
    found, _ = server
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"http://127.0.0.1:{found.ports[0]}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Authorization": "Bearer lnd_not_a_key", "Accept": "application/json"},
        )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    with pytest.raises(BaseExceptionGroup) as refused:
        async with http_client(found.ports[0], "lnd_not_a_key") as client:
            await client.list_tools()
    assert refused.group_contains(MCPError, depth=2)


def stdio(url: str, key: str) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if k != "LENDING_API_KEY"}
    env |= {"DATABASE_URL": url, "LENDING_API_KEY": key, "LOG_LEVEL": "WARNING"}
    return StdioServerParameters(command=sys.executable, args=["-m", "graph.cli", "mcp"], env=env)


async def test_stdio_serves_the_same_tools_with_the_key_from_the_environment(server) -> None:
    found, keys = server
    async with Client(stdio(found.url, keys[Role.AGENT])) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == AGENT_TOOLS
        result = await client.call_tool(
            "apply_for_loan",
            application_input("Sam Stdio", "2500", dryRun=True),
        )
        payload = structured(result)["data"]["applyForLoan"]
        assert payload["dryRun"] is True
        assert payload["application"]["status"] == "SUBMITTED"
        bad = structured(
            await client.call_tool(
                "apply_for_loan",
                application_input("Sam Stdio", "2500", productCode="NO-SUCH"),
            )
        )["data"]["applyForLoan"]
        assert [e["code"] for e in bad["userErrors"]] == ["NOT_FOUND"]
    engine = create_engine(found.url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            stored = await connection.execute(
                text("SELECT count(*) FROM applicants WHERE email = 'sam.stdio@example.com'")
            )
            assert stored.scalar() == 0
    finally:
        await engine.dispose()


async def test_stdio_refuses_a_wrong_key(server) -> None:
    found, _ = server
    with pytest.raises(BaseExceptionGroup) as refused:
        async with Client(stdio(found.url, "lnd_not_a_key"), read_timeout_seconds=20) as client:
            await client.list_tools()
    assert refused.group_contains(MCPError, match="Connection closed", depth=2)


async def test_tool_results_show_personal_data_as_the_callers_role_may_see_it(server) -> None:
    found, keys = server
    given = application_input("Abena Owusu", "3000", declaredMonthlyIncome="4200") | {
        "applicant": {
            "fullName": "Abena Owusu",
            "email": "abena@example.com",
            "phone": "+233 24 555 0142",
        }
    }
    async with connect("http", found, keys[Role.UNDERWRITER]) as underwriter:
        applied = structured(await underwriter.call_tool("apply_for_loan", given))
        application = applied["data"]["applyForLoan"]["application"]["id"]
        full = structured(await underwriter.call_tool("get_application", {"id": application}))
    assert full["data"]["application"]["applicant"]["email"] == "abena@example.com"
    assert full["data"]["application"]["declaredMonthlyIncome"] == "4200.00"
    async with connect("http", found, keys[Role.AGENT]) as agent:
        seen = structured(await agent.call_tool("get_application", {"id": application}))
    read = seen["data"]["application"]
    assert read["applicant"]["email"] == "a•••@example.com"
    assert read["applicant"]["phone"] == "+••• •• ••• ••42"
    assert read["declaredMonthlyIncome"] is None
