"""Metrics, request logs and traces: each request reported once, and nothing private in logs.

Metrics are scraped from ``/metrics`` and parsed with the Prometheus client's own parser; the
counters are the process's, so each test compares a scrape before with one after. Logs are
captured through the service's formatters. Traces go to the SDK's in-memory exporter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from db.listener import EventListener
from db.repositories import products as product_repo
from graph.observability.logs import JSONFormatter, TextFormatter
from graph.observability.telemetry import TelemetryMiddleware
from graph.observability.tracing import from_settings
from graph.server.app import create_app
from graph.server.settings import Settings
from tests.dbfixtures import admin_context, http_client
from tests.factories import create_application, create_product

APPLY = """
mutation Apply($input: ApplyForLoanInput!) {
  applyForLoan(input: $input) { application { id } userErrors { code } replayed }
}
"""
PRODUCTS = "query Products { loanProducts { code } }"
EMAIL = "private.person@example.com"
AMOUNT = "6543.21"


def apply_input(email: str = EMAIL, **more: Any) -> dict[str, Any]:
    return {
        "input": {
            "applicant": {"fullName": "Private Person", "email": email},
            "productCode": "PERSONAL-USD",
            "amount": AMOUNT,
            "termMonths": 12,
        }
        | more
    }


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def moved(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_metrics_count_requests_outcomes_codes_and_paths(
    client, app, engine: AsyncEngine
) -> None:
    await create_product(engine)
    application = await create_application(engine)
    before = await scrape(client)
    await client.post("/graphql", json={"query": PRODUCTS})  # compiled, full path
    await client.post("/graphql", json={"query": PRODUCTS})  # compiled, short path
    await client.post("/graphql", json={"query": APPLY, "variables": apply_input()})
    await client.post("/graphql", json={"query": APPLY, "variables": apply_input()})  # duplicate
    keyed = apply_input("keyed@example.com", idempotencyKey="metrics-1")
    await client.post("/graphql", json={"query": APPLY, "variables": keyed})
    await client.post("/graphql", json={"query": APPLY, "variables": keyed})  # a replay
    await client.post("/graphql", json={"query": "query Broken { nope }"})
    async with http_client(app, None) as anonymous:
        await anonymous.post("/graphql", json={"query": PRODUCTS})
    preview = 'query Preview { previewSchedule(input: { productCode: "PERSONAL-USD", '
    preview += 'amount: "1000", termMonths: 6 }) { userErrors { code } } }'
    await client.post("/graphql", json={"query": preview})  # a root field never compiled
    assert application.id
    after = await scrape(client)

    total = "lending_requests_total"
    assert moved(before, after, total, operation="Products", type="query", outcome="ok") == 2
    assert moved(before, after, total, operation="Apply", type="mutation", outcome="ok") == 3
    assert (
        moved(before, after, total, operation="Apply", type="mutation", outcome="user_errors") == 1
    )
    assert moved(before, after, total, operation="Broken", type="query", outcome="errors") == 1
    assert (
        moved(
            before, after, total, operation="anonymous", type="unknown", outcome="unauthenticated"
        )
        == 1
    )
    assert moved(before, after, "lending_user_errors_total", code="DUPLICATE_OPEN_APPLICATION") == 1
    assert moved(before, after, "lending_errors_total", code="GRAPHQL_VALIDATION_FAILED") == 1
    assert moved(before, after, "lending_errors_total", code="UNAUTHENTICATED") == 1
    assert moved(before, after, "lending_idempotent_replays_total") == 1
    assert moved(before, after, "lending_root_fields_total", path="compiled") == 2
    assert moved(before, after, "lending_root_fields_total", path="per_field") == 1
    assert moved(before, after, "lending_request_duration_seconds_count", type="query") == 4
    assert moved(before, after, "lending_sql_statements_total") > 0
    for state in ("in_use", "idle", "waiting"):
        assert ("lending_db_pool_connections", (("pool", "orm"), ("state", state))) in after


async def test_operation_names_cannot_flood_the_metrics(client) -> None:
    before = await scrape(client)
    await client.post("/graphql", json={"query": "query Q$1 { loanProducts { code } }"})
    after = await scrape(client)
    assert not [k for k in after if ("operation", "Q$1") in k[1]]
    assert after.keys() - before.keys() <= {
        k for k in after if dict(k[1]).get("operation") in ("other", "anonymous", None)
    }


async def test_subscriptions_are_counted_while_open(app, client, database_url: str) -> None:
    events = EventListener(database_url)
    context = admin_context(app, events, "s")
    before = await scrape(client)
    stream = await app.state.schema.subscribe(
        "subscription { loanEvents { type } }", context_value=context
    )
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.3)
    during = await scrape(client)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    await stream.aclose()
    await events.close()
    after = await scrape(client)
    assert moved(before, during, "lending_subscriptions") == 1
    assert moved(before, after, "lending_subscriptions") == 0


# ---- logs --------------------------------------------------------------------------------


class Lines(logging.Handler):
    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines() -> Iterator[list[Lines]]:
    handlers = [Lines(JSONFormatter()), Lines(TextFormatter())]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    for handler in handlers:
        root.addHandler(handler)
    yield handlers
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)


async def broken(*_args: Any, **_kwargs: Any) -> None:
    raise RuntimeError(f"fault near {EMAIL} paying {AMOUNT} with lnd_secret_key_123")


async def test_one_json_line_per_request_and_nothing_private(
    client, admin_key, per_field_client, engine: AsyncEngine, monkeypatch, log_lines
) -> None:
    await create_product(engine)
    await client.post(
        "/graphql",
        json={"query": APPLY, "variables": apply_input()},
        headers={"X-Request-ID": "log-apply"},
    )
    # A bad variable: graphql-core's message quotes the value sent.
    await client.post(
        "/graphql",
        json={"query": APPLY, "variables": {"input": {"email": EMAIL, "amount": AMOUNT}}},
        headers={"X-Request-ID": "log-bad"},
    )
    await client.post(
        "/graphql", json={"query": PRODUCTS}, headers={"Authorization": "Bearer lnd_wrong_key"}
    )
    monkeypatch.setattr(product_repo, "list_products", broken)
    await per_field_client.post(
        "/graphql", json={"query": PRODUCTS}, headers={"X-Request-ID": "log-fault"}
    )

    json_lines, text_lines = (h.lines for h in log_lines)
    entries = [orjson.loads(line) for line in json_lines]
    requests = {e["request_id"]: e for e in entries if e["logger"] == "lending.request"}
    apply = requests["log-apply"]
    assert apply["operation"] == "Apply"
    assert apply["type"] == "mutation"
    assert apply["actor"] == "admin"
    assert apply["outcome"] == "ok"
    assert apply["status"] == 200
    assert apply["statements"] > 0
    assert apply["duration_ms"] > 0
    assert requests["log-bad"]["outcome"] == "errors"
    assert set(requests["log-bad"]["errors"]) == {"BAD_USER_INPUT"}
    assert requests["log-fault"]["errors"] == ["INTERNAL_SERVER_ERROR"]
    [fault] = [
        e for e in entries if e["logger"] == "lending.errors" and "log-fault" in e["message"]
    ]
    assert "RuntimeError" in fault["traceback"]
    assert [e for e in requests.values() if e["outcome"] == "unauthenticated"]

    everything = "\n".join(json_lines + text_lines)
    assert "log-fault" in everything
    for private in (EMAIL, AMOUNT, admin_key, "lnd_secret_key_123", "lnd_wrong_key", "6543"):
        assert private not in everything, private


# ---- traces ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def traced(database_url: str, app: FastAPI) -> tuple[FastAPI, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    settings = Settings(database_url=database_url)
    tracing = from_settings(settings, exporter)
    return create_app(settings, database_url, app.state.schema, tracing=tracing), exporter


@pytest.fixture
async def traced_client(traced, admin_key) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(traced[0], admin_key) as client:
        yield client


async def test_a_request_is_traced_down_to_its_statements(traced, traced_client, engine) -> None:
    await create_product(engine)
    _, exporter = traced
    exporter.clear()
    await traced_client.post(
        "/graphql",
        json={"query": APPLY, "variables": apply_input()},
        headers={"X-Request-ID": "trace-1"},
    )
    spans = exporter.get_finished_spans()
    [request] = [s for s in spans if s.name == "POST /graphql"]
    [operation] = [s for s in spans if s.name == "mutation Apply"]
    statements = [s for s in spans if s.attributes.get("db.system.name") == "postgresql"]
    assert request.attributes["lending.request_id"] == "trace-1"
    assert request.attributes["graphql.operation.name"] == "Apply"
    assert request.attributes["http.response.status_code"] == 200
    assert operation.parent.span_id == request.context.span_id
    assert statements
    assert all(s.context.trace_id == request.context.trace_id for s in statements)
    # The key is looked up before the operation starts; the operation runs the rest.
    parents = {s.parent.span_id for s in statements}
    assert parents <= {operation.context.span_id, request.context.span_id}
    assert {s.parent.span_id for s in statements if s.name == "INSERT"} == {
        operation.context.span_id
    }
    assert all(s.attributes["lending.request_id"] == "trace-1" for s in statements)
    assert request.attributes["lending.statements"] == len(statements)
    assert not [s for s in spans if EMAIL in str(s.attributes) or AMOUNT in str(s.attributes)]

    # A query the short path answers has its statement in the trace too.
    for _ in range(2):
        exporter.clear()
        await traced_client.post("/graphql", json={"query": PRODUCTS})
    spans = exporter.get_finished_spans()
    [request] = [s for s in spans if s.name == "POST /graphql"]
    [select] = [s for s in spans if s.name == "SELECT"]
    assert select.parent.span_id == request.context.span_id
    assert request.attributes["graphql.operation.name"] == "Products"


def test_without_an_endpoint_there_is_no_tracing() -> None:
    assert from_settings(Settings()) is None


async def test_with_nothing_to_report_requests_are_not_recorded(
    database_url: str, app: FastAPI, admin_key: str, engine
) -> None:
    """METRICS=off and a log level above INFO, no tracing: no telemetry layer at all (the
    quiet side of the overhead benchmark), and the API answers as before."""
    await create_product(engine)
    quiet = logging.getLogger("lending.request")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        bare = create_app(
            Settings(database_url=database_url, metrics=False), database_url, app.state.schema
        )
    finally:
        quiet.setLevel(level)
    assert not [m for m in bare.user_middleware if m.cls is TelemetryMiddleware]
    assert [m for m in app.user_middleware if m.cls is TelemetryMiddleware]
    async with http_client(bare, admin_key) as client:
        assert (await client.get("/metrics")).status_code == 404
        answer = await client.post("/graphql", json={"query": PRODUCTS})
    assert answer.json()["data"]["loanProducts"]


async def test_with_a_metrics_token_metrics_need_it(database_url, app) -> None:
    token = "scrape-" + "t" * 24
    guarded = create_app(
        Settings(database_url=database_url, metrics_token=token), database_url, app.state.schema
    )
    async with http_client(guarded, None) as client:
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 31})
        right = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "lending_" not in anonymous.text
    assert right.status_code == 200
    assert "lending_" in right.text


def test_production_needs_a_metrics_token_or_no_metrics() -> None:
    with pytest.raises(ValueError, match="METRICS_TOKEN"):
        Settings(lending_env="production")
    assert Settings(lending_env="production", metrics=False).metrics_token is None
