"""/dashboard: served in demo mode only, with the demo's AGENT key in its key field and its
scripts from the server when the assets folder holds them (the CDN otherwise); the documents it
sends are valid against the schema and answered without an error for that key. (The browser
test, tests/e2e/test_dashboard.py, checks what it draws.)"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from graphql import parse, validate

from db.session import create_sessionmaker
from graph.server.dashboard import ROLE, template
from graph.server.static import CACHE_CONTROL, CDN, assets
from lending import clock
from lending.access import demo_key
from lending.services.demo import seed_demo
from tests.api.test_graphiql import HTML, client_of, fake_assets, ide_app
from tests.dbfixtures import http_client
from tests.factories import month_ends

PAGE = template()
DOCUMENTS = dict(
    re.findall(r'<script type="application/graphql" id="(\w+)">(.*?)</script>', PAGE, re.DOTALL)
)


def test_the_page_loads_chart_js_and_graphql_ws_with_their_hashes() -> None:
    loaded = assets(PAGE)
    assert [path.split("/")[0] for path in loaded] == ["chart.js@4.5.1", "graphql-ws@6.4.2"]
    assert PAGE.count(CDN) == PAGE.count("integrity=") == 2


@pytest.mark.parametrize("demo", [True, False], ids=["demo", "not demo"])
async def test_only_the_demo_serves_it_with_the_agent_key(
    app, database_url, tmp_path, demo
) -> None:
    async with client_of(ide_app(app, database_url, tmp_path / "absent", demo=demo)) as client:
        answer = await client.get("/dashboard", headers=HTML)
    if not demo:
        assert answer.status_code == 404
        return
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["cache-control"] == "no-cache"
    assert f'value="{demo_key(ROLE)}"' in answer.text
    assert "{{API_KEY}}" not in answer.text
    assert answer.text.count(CDN) == 2  # no local copies: the CDN's, with their hashes


async def test_with_its_scripts_in_the_folder_it_names_and_serves_them(
    app, database_url, tmp_path
) -> None:
    files = fake_assets(tmp_path, PAGE)
    # (and even without GraphiQL)
    served_app = ide_app(app, database_url, tmp_path, graphiql=False, demo=True)
    async with client_of(served_app) as client:
        page = (await client.get("/dashboard", headers=HTML)).text
        assert CDN not in page
        assert page.count("integrity=") == 2
        for path, content in files.items():
            assert f'src="/dashboard/assets/{path}"' in page
            served = await client.get(f"/dashboard/assets/{path}")
            assert (served.status_code, served.content) == (200, content)
            assert served.headers["cache-control"] == CACHE_CONTROL
        missing = await client.get("/dashboard/assets/chart.js@4.5.1/dist/chart.js")
        assert missing.status_code == 404
        assert (await client.get("/dashboard/assets/../secret")).status_code == 404


def test_its_documents_are_valid_against_the_schema(app) -> None:
    assert sorted(DOCUMENTS) == ["query", "subscription"]
    for document in DOCUMENTS.values():
        assert validate(app.state.schema._schema, parse(document)) == []


async def test_its_query_is_answered_for_the_agent_key(app, api_keys, engine) -> None:
    await seed_demo(create_sessionmaker(engine))
    today = clock.today()
    variables = {
        "asOf": today.isoformat(),
        "from": (today - timedelta(days=730)).isoformat(),
        "cuts": ["690", "740"],
    } | {f"m{i:02}": end.isoformat() for i, end in enumerate(month_ends(today), start=1)}
    async with http_client(app, api_keys[ROLE]) as client:
        answer = (
            await client.post(
                "/graphql", json={"query": DOCUMENTS["query"], "variables": variables}
            )
        ).json()
    assert "errors" not in answer, answer
    data = answer["data"]
    assert [entry["currency"] for entry in data["today"]] == ["KES", "USD"]
    assert [entry["asOf"] for m in range(1, 13) for entry in data[f"m{m:02}"][:1]] == [
        variables[f"m{m:02}"] for m in range(1, 13) if data[f"m{m:02}"]
    ]
    assert {group["model"] for group in data["bands"]} >= {"credit-score@3.2"}
