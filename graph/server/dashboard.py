"""/dashboard: the demo's one page of charts, drawn from the GraphQL API like any frontend's.

A static page (``dashboard.html``): it posts one document (today's ``portfolio`` by delinquency
bucket, ``portfolio`` at the last twelve month-ends for PAR30/60/90, ``decisionStats`` by model and
score band) to /graphql with the key in its key field (the demo's AGENT key to begin with, the
weakest role that may read all three), draws them with Chart.js, lists the exact figures under
each chart, and reads again whenever ``loanEvents`` (graphql-ws's own client) announces a change.

Served only in demo mode: elsewhere nobody has a key to put in the page. Its scripts come from
the same folder as GraphiQL's (`make graphiql-assets`, graph.server.ide) when it holds them,
under /dashboard/assets/, and from the CDN otherwise, with their integrity hashes either way.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from graph.server.static import CDN, LocalAssets, complete
from lending.access import Role, demo_key

PATH = "/dashboard"
TEMPLATE = Path(__file__).with_name("dashboard.html")
KEY_SLOT = "{{API_KEY}}"
ROLE = Role.AGENT


def template() -> str:
    """The page as committed, its key field empty and its scripts on the CDN."""
    return TEMPLATE.read_text(encoding="utf-8")


def page(key: str, local_assets: bool) -> str:
    """The page with ``key`` in its key field, naming /dashboard/assets/ when ``local_assets``."""
    text = template().replace(KEY_SLOT, html.escape(key, quote=True))
    return text.replace(CDN, f"{PATH}/assets/") if local_assets else text


def mount(app: FastAPI, assets: Path) -> None:
    """Serve the page (and, when ``assets`` holds all its scripts, them) on ``app``."""
    local = complete(template(), assets)
    body = page(demo_key(ROLE), local)

    async def dashboard(request: Request) -> HTMLResponse:
        # Revalidated on every visit: a new release of the page is seen at once.
        return HTMLResponse(body, headers={"Cache-Control": "no-cache"})

    app.add_route(PATH, dashboard, methods=["GET", "HEAD"], include_in_schema=False)
    if local:
        app.add_route(
            f"{PATH}/assets/{{file:path}}",
            LocalAssets(assets).serve,
            methods=["GET", "HEAD"],
            include_in_schema=False,
        )
