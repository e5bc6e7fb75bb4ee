"""The demo's /dashboard in a real browser: its three charts draw what the API answers (asked
here with documents of this test's own), every script comes from the server, and a loan
disbursed elsewhere reaches the charts by itself, through loanEvents (screenshot:
.e2e/dashboard.png)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from playwright.async_api import BrowserContext, Page

from graph.server.dashboard import template
from graph.server.static import assets
from lending.access import Role, demo_key
from lending.services.demo import APPLICATIONS
from tests.e2e.conftest import ROOT, Demo, ask, only_from
from tests.factories import month_ends

CUTS = ["690", "740"]  # the page's score bands
FIGURES = """query Figures($asOf: Date!, $from: Date!, $cuts: [Decimal!]) {
  portfolio(asOf: $asOf) { currency buckets { bucket loans outstandingPrincipal overdueAmount } }
  decisionStats(from: $from, to: $asOf, asOf: $asOf, groupBy: [MODEL, SCORE_BAND],
                scoreBands: $cuts) {
    model scoreBand { lower upper } decisions disbursed everBad badRate
  }
}"""
RISK = "query Risk($asOf: Date!) { portfolio(asOf: $asOf) { currency par30 par60 par90 } }"
APPLY = """mutation($name: String!, $email: String!) { applyForLoan(input: {applicant: {
  fullName: $name, email: $email}, productCode: "PERSONAL-USD", amount: "3000", termMonths: 12}) {
  application { id } userErrors { code } } }"""
APPROVE = """mutation($id: ID!) { decideApplication(input: {applicationId: $id,
  outcome: "APPROVED", reason: "Verified income",
  assessment: {score: "781", model: "credit-score@3.2"}}) {
  application { loan { id } } userErrors { code } } }"""
DISBURSE = """mutation($id: ID!) { disburseLoan(input: {loanId: $id}) {
  loan { status principal } userErrors { code } } }"""
# What the page shows: each chart's labels and datasets (the exact strings, and the numbers the
# bars and points are drawn at), each table's cells, and whether each canvas has been painted.
SHOWN = """() => {
  const chart = (id) => {
    const c = Chart.getChart(document.getElementById(id));
    const datasets = c.data.datasets.map((d) => ({ label: d.label, exact: d.exact, data: d.data }));
    return { labels: c.data.labels, datasets };
  };
  const table = (id) => [...document.querySelectorAll(`#${id} tbody tr`)]
    .map((row) => [...row.cells].map((cell) => cell.textContent));
  const painted = (id) => {
    const canvas = document.getElementById(id);
    const blank = document.createElement("canvas");
    blank.width = canvas.width; blank.height = canvas.height;
    return canvas.toDataURL() !== blank.toDataURL();
  };
  const ids = ["buckets", "par", "bands"];
  return {
    asOf: document.getElementById("as-of").textContent,
    currency: document.getElementById("currency").value,
    refreshes: Number(document.getElementById("dashboard").dataset.refreshes),
    charts: Object.fromEntries(ids.map((id) => [id, chart(id)])),
    tables: Object.fromEntries(ids.map((id) => [id, table(`${id}-table`)])),
    painted: ids.filter(painted),
  };
}"""


def band_label(band: dict[str, str | None] | None) -> str:
    if band is None:
        return "no score"
    if band["lower"] is None:
        return f"< {band['upper']}"
    if band["upper"] is None:
        return f"≥ {band['lower']}"
    return f"{band['lower']}–{band['upper']}"


def drawn(exact: list[str | None]) -> list[float | None]:
    """Where the chart puts a figure given as an exact decimal string."""
    return [None if value is None else float(value) for value in exact]


def shown_as(chart: dict[str, Any]) -> dict[str, Any]:
    """A chart's labels and, per dataset, its label and exact figures, after checking that each
    point is drawn at its figure."""
    for dataset in chart["datasets"]:
        assert dataset["data"] == drawn(dataset["exact"]), dataset["label"]
    return {
        "labels": chart["labels"],
        "datasets": [(d["label"], d["exact"]) for d in chart["datasets"]],
    }


async def expected(demo: Demo, today: date, currency: str) -> dict[str, Any]:
    """What the page must show for ``currency`` on ``today``, from the API's own answers."""
    start = date(today.year - 2, today.month, 1) + timedelta(days=today.day - 1)
    figures = await ask(
        demo, FIGURES, {"asOf": today.isoformat(), "from": start.isoformat(), "cuts": CUTS}
    )
    ends = month_ends(today)
    risks = await asyncio.gather(*(ask(demo, RISK, {"asOf": end.isoformat()}) for end in ends))
    today_entry = next(p for p in figures["portfolio"] if p["currency"] == currency)
    buckets = today_entry["buckets"]
    risk = [next((p for p in r["portfolio"] if p["currency"] == currency), None) for r in risks]
    pars = ["par30", "par60", "par90"]
    groups = figures["decisionStats"]
    scored = [g for g in groups if g["model"] and g["scoreBand"]]
    bands = list(dict.fromkeys(band_label(g["scoreBand"]) for g in scored))
    models = sorted({g["model"] for g in scored})
    rate = {(g["model"], band_label(g["scoreBand"])): g["badRate"] for g in scored}
    return {
        "charts": {
            "buckets": {
                "labels": [b["bucket"] for b in buckets],
                "datasets": [
                    (
                        f"Outstanding principal ({currency})",
                        [b["outstandingPrincipal"] for b in buckets],
                    ),
                    (f"Overdue amount ({currency})", [b["overdueAmount"] for b in buckets]),
                ],
            },
            "par": {
                "labels": [end.isoformat() for end in ends],
                "datasets": [
                    (f"{field.upper()} ({currency})", [p[field] if p else None for p in risk])
                    for field in pars
                ],
            },
            "bands": {
                "labels": bands,
                "datasets": [(m, [rate.get((m, band)) for band in bands]) for m in models],
            },
        },
        "tables": {
            "buckets": [
                [b["bucket"], str(b["loans"]), b["outstandingPrincipal"], b["overdueAmount"]]
                for b in buckets
            ],
            "par": [
                [end.isoformat(), *(p[f] if p else "—" for f in pars)]
                for end, p in zip(ends, risk, strict=True)
            ],
            "bands": [
                [
                    g["model"] or "no model",
                    band_label(g["scoreBand"]),
                    str(g["decisions"]),
                    str(g["disbursed"]),
                    str(g["everBad"]),
                    g["badRate"] or "—",
                ]
                for g in groups
            ],
        },
    }


async def on_screen(page: Page) -> dict[str, Any]:
    shown: dict[str, Any] = await page.evaluate(SHOWN)
    assert shown["painted"] == ["buckets", "par", "bands"]
    return {
        "charts": {name: shown_as(chart) for name, chart in shown["charts"].items()},
        "tables": shown["tables"],
        "asOf": shown["asOf"],
        "currency": shown["currency"],
        "refreshes": shown["refreshes"],
    }


def figures_of(shown: dict[str, Any]) -> dict[str, Any]:
    return {"charts": shown["charts"], "tables": shown["tables"]}


async def test_the_dashboard_draws_the_apis_figures_and_follows_loan_events(
    browser: BrowserContext, demo: Demo
) -> None:
    page = await browser.new_page()
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    elsewhere = await only_from(page, demo.url)
    files: dict[str, int] = {}
    page.on(
        "response", lambda r: files.setdefault(r.url, r.status) if "/assets/" in r.url else None
    )

    # when the page is opened with nothing typed: the demo's key is in it
    await page.goto(f"{demo.url}/dashboard")
    await page.wait_for_selector("#dashboard[data-state=ready][data-live=connected]")
    assert await page.locator("#key").input_value() == demo_key(Role.AGENT)

    # then each chart and table shows what the API answers, in the busiest currency first
    shown = await on_screen(page)
    today = date.fromisoformat(shown["asOf"])
    assert shown["currency"] == "USD"  # the demo's USD book has the most active loans
    assert figures_of(shown) == await expected(demo, today, "USD")
    assert shown["charts"]["bands"]["datasets"] == [
        ("credit-score@3.2", ["1.0000", "0.5000", "0.0000"])
    ]
    # and in the other currency when it is chosen
    await page.select_option("#currency", "KES")
    assert figures_of(await on_screen(page)) == await expected(demo, today, "KES")
    await page.select_option("#currency", "USD")

    # when a loan is applied for, approved and disbursed by somebody else
    before = await on_screen(page)
    # (a demo applicant applying again: the other browser tests expect only the demo's people)
    name, email, *_ = APPLICATIONS[0]
    application = (await ask(demo, APPLY, {"name": name, "email": email}))["applyForLoan"]
    assert application["userErrors"] == []
    decided = await ask(demo, APPROVE, {"id": application["application"]["id"]})
    loan_id = decided["decideApplication"]["application"]["loan"]["id"]
    disbursed = (await ask(demo, DISBURSE, {"id": loan_id}))["disburseLoan"]
    assert disbursed["userErrors"] == []
    assert disbursed["loan"]["status"] == "ACTIVE"

    # then the page reads again by itself, and shows the loan in the CURRENT bucket
    after = await expected(demo, today, "USD")
    current = after["charts"]["buckets"]["datasets"][0][1][0]
    was = before["charts"]["buckets"]["datasets"][0][1][0]
    assert Decimal(current) == Decimal(was) + Decimal(disbursed["loan"]["principal"])
    await page.wait_for_function(
        "(figure) => Chart.getChart(document.getElementById('buckets')).data.datasets[0].exact[0]"
        " === figure",
        arg=current,
    )
    now = await on_screen(page)
    assert now["refreshes"] > before["refreshes"]
    assert figures_of(now) == after
    (ROOT / ".e2e").mkdir(exist_ok=True)
    await page.screenshot(path=ROOT / ".e2e" / "dashboard.png", full_page=True)

    assert failures == []
    assert elsewhere == []  # nothing from a CDN
    assert files == {f"{demo.url}/dashboard/assets/{path}": 200 for path in assets(template())}
    await page.close()


async def test_a_refused_key_is_said_on_the_page(browser: BrowserContext, demo: Demo) -> None:
    page = await browser.new_page()
    await page.goto(f"{demo.url}/dashboard")
    await page.wait_for_selector("#dashboard[data-state=ready]")
    await page.fill("#key", "lnd_not_a_key")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#dashboard[data-state=failed]")
    assert "UNAUTHENTICATED" in await page.locator("#status").inner_text()
    await page.close()
