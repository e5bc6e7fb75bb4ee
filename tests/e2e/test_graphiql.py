"""GraphiQL in a real browser: loaded from the server alone, the demo key typed into its Headers
editor, a nested query run, and the demo data on screen (a screenshot: .e2e/graphiql.png)."""

from __future__ import annotations

import asyncio
import json

import httpx
from playwright.async_api import BrowserContext, Locator
from playwright.async_api import TimeoutError as PlaywrightTimeout

from graph.server.ide import OFFLINE, strawberry_page
from graph.server.static import assets
from lending.services.demo import APPLICATIONS
from tests.e2e.conftest import ROOT, Demo, only_from

KEY = "lnd_demo_admin"
HEADERS = '{"Authorization": "Bearer ' + KEY + '"}'
QUERY = """query Pipeline {
  applications(
    first: 5
    filter: { status: [APPROVED, IN_REVIEW] }
    orderBy: { field: SUBMITTED_AT, direction: DESC }
  ) {
    totalCount
    edges {
      node {
        reference status amountRequested
        applicant { fullName email }
        decisions { outcome reason decidedBy }
        loan { reference status principal termMonths }
      }
    }
  }
}
"""
SCREENSHOT = ROOT / ".e2e" / "graphiql.png"
RESULT = ".result-window .CodeMirror"
HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
SUBSCRIPTION = "subscription Watch { loanEvents { type applicationId application { status } } }"
APPLY = """mutation { applyForLoan(input: {applicant: {fullName: "Esi Owusu",
  email: "esi.graphiql@example.com"}, productCode: "PERSONAL-USD", amount: "3000",
  termMonths: 12}) { application { id } userErrors { code } } }"""


async def text_of(editor: Locator) -> str:
    """The whole text of a CodeMirror editor (its screen shows only the lines in view)."""
    return str(await editor.evaluate("element => element.CodeMirror.getValue()"))


async def test_graphiql_runs_a_nested_query_with_the_demo_key(
    browser: BrowserContext, demo: Demo
) -> None:
    page = await browser.new_page()
    elsewhere = await only_from(page, demo.url)
    # The page's files, as this server answered them (the schema's introspection, made before
    # the key is typed, is refused: not a file).
    files: dict[str, int] = {}
    page.on(
        "response", lambda r: files.setdefault(r.url, r.status) if "/assets/" in r.url else None
    )
    await page.goto(f"{demo.url}/graphql")
    assert "/graphql/assets/" in await page.content()
    query_editor = page.locator(".graphiql-query-editor .CodeMirror")
    await query_editor.wait_for()

    await page.get_by_role("button", name="Headers", exact=True).click()
    headers_editor = page.locator(HEADERS_EDITOR)
    await headers_editor.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.type(HEADERS)
    assert json.loads(await text_of(headers_editor)) == json.loads(HEADERS)

    await query_editor.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.insert_text(QUERY)
    await page.locator(".graphiql-execute-button").click()
    await page.wait_for_function(
        f"() => document.querySelector('{RESULT}').CodeMirror.getValue().includes('totalCount')"
    )
    shown = json.loads(await text_of(page.locator(RESULT)))
    SCREENSHOT.parent.mkdir(exist_ok=True)
    await page.screenshot(path=SCREENSHOT)

    # What GraphiQL shows is what the API answers to the same request.
    async with httpx.AsyncClient(timeout=10) as client:
        direct = await client.post(
            f"{demo.url}/graphql", json={"query": QUERY}, headers={"Authorization": f"Bearer {KEY}"}
        )
    assert shown == direct.json()
    assert "errors" not in shown
    nodes = [edge["node"] for edge in shown["data"]["applications"]["edges"]]
    assert shown["data"]["applications"]["totalCount"] >= len(nodes) >= 3
    assert {node["status"] for node in nodes} <= {"APPROVED", "IN_REVIEW"}
    approved = [node for node in nodes if node["status"] == "APPROVED"]
    assert approved
    assert all(node["loan"] and node["decisions"][-1]["outcome"] == "APPROVED" for node in approved)
    applicants = {(name, email) for name, email, *_ in APPLICATIONS}
    assert all(tuple(node["applicant"].values()) in applicants for node in nodes)
    on_screen = await page.locator(".result-window").inner_text()
    assert nodes[0]["applicant"]["fullName"] in on_screen
    assert nodes[0]["reference"] in on_screen
    assert elsewhere == []  # nothing came from a CDN
    # Every file the page names came from here.
    assert files == {f"{demo.url}/graphql/assets/{path}": 200 for path in assets(strawberry_page())}
    await page.close()


async def test_graphiql_opens_ready_to_run_and_runs_a_subscription(
    browser: BrowserContext, demo: Demo
) -> None:
    page = await browser.new_page()
    await page.goto(f"{demo.url}/healthz")  # this origin, without GraphiQL on it
    await page.evaluate("localStorage.clear()")  # as on a first visit
    # (GraphiQL's first request is the schema's introspection)
    async with page.expect_response(
        lambda r: r.url == f"{demo.url}/graphql" and r.request.method == "POST"
    ) as first:
        await page.goto(f"{demo.url}/graphql")
    introspected = await first.value
    query_editor = page.locator(".graphiql-query-editor .CodeMirror")
    await query_editor.wait_for()
    # a newcomer's first screen: the README's first query, and the demo key in the headers
    assert (await text_of(query_editor)).startswith("query Pipeline {")
    await page.get_by_role("button", name="Headers", exact=True).click()
    assert json.loads(await text_of(page.locator(HEADERS_EDITOR))) == json.loads(HEADERS)
    # and the schema it fetched first was answered, not refused
    assert introspected.status == 200
    assert "__schema" in (await introspected.json())["data"]

    # when the subscription runs (over a WebSocket, the headers as its connection_init payload)
    await query_editor.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.insert_text(SUBSCRIPTION)
    # GraphiQL takes the operation's name from the editor a moment after a change: until then
    # the Run button would send the old name (over HTTP); a subscription opens a WebSocket.
    for attempt in range(3):
        await asyncio.sleep(1)
        try:
            async with page.expect_websocket(timeout=5000) as opened:
                await page.locator(".graphiql-execute-button").click()
            await opened.value
            break
        except PlaywrightTimeout:
            assert attempt < 2, "GraphiQL never opened a WebSocket"
    await asyncio.sleep(1.5)  # its connection_init and subscribe reach the server
    async with httpx.AsyncClient(timeout=10) as client:
        applied = await client.post(
            f"{demo.url}/graphql", json={"query": APPLY}, headers={"Authorization": f"Bearer {KEY}"}
        )
    app_id = applied.json()["data"]["applyForLoan"]["application"]["id"]
    # then the event is shown as it arrives
    await page.wait_for_function(
        f"() => document.querySelector('{RESULT}').CodeMirror.getValue().includes('{app_id}')"
    )
    shown = json.loads(await text_of(page.locator(RESULT)))
    assert "errors" not in shown
    assert shown["data"] == {
        "loanEvents": {
            "type": "SUBMITTED",
            "applicationId": app_id,
            "application": {"status": "SUBMITTED"},
        }
    }
    await page.screenshot(path=SCREENSHOT.with_name("graphiql-subscription.png"))
    await page.close()


async def test_without_its_scripts_and_offline_the_page_says_so(
    browser: BrowserContext, without_assets: str
) -> None:
    # given a server with no local copy of GraphiQL's scripts, and no way to the CDN
    page = await browser.new_page()
    await only_from(page, without_assets)
    # when GraphiQL's page is opened
    await page.goto(f"{without_assets}/graphql")
    # then it says, in plain words, what is wrong and what to do, instead of "Loading..."
    await page.wait_for_function(
        "() => !document.getElementById('graphiql').textContent.startsWith('Loading')"
    )
    shown = await page.locator("#graphiql").inner_text()
    assert shown == OFFLINE
    assert "make graphiql-assets" in shown
    await page.close()
