"""GraphiQL in a real browser: loaded from the server alone, the demo key typed into its Headers
editor, a nested query run, and the demo data on screen (a screenshot: .e2e/graphiql.png)."""

from __future__ import annotations

import json

import httpx
from playwright.async_api import BrowserContext, Locator, Route

from graph.ide import assets, strawberry_page
from lending.demo import APPLICATIONS
from tests.e2e.conftest import ROOT, Demo

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


async def text_of(editor: Locator) -> str:
    """The whole text of a CodeMirror editor (its screen shows only the lines in view)."""
    return str(await editor.evaluate("element => element.CodeMirror.getValue()"))


async def test_graphiql_runs_a_nested_query_with_the_demo_key(
    browser: BrowserContext, demo: Demo
) -> None:
    page = await browser.new_page()
    elsewhere: list[str] = []

    async def this_server_only(route: Route) -> None:
        if route.request.url.startswith(demo.url + "/"):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", this_server_only)
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
    headers_editor = page.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror")
    await headers_editor.click()
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
