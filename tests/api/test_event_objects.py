"""An event's objects (`LoanEvent.application`, `.loan`, `.entity`): read as the event is
delivered, with the subscriber's role, one statement shared by every subscriber of a process
selecting the same thing, and no connection held between events; a subscription sent over
plain HTTP is a clean 400."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from fastapi import FastAPI

from db.listener import EventListener
from db.session import create_sessionmaker
from graph.server.app import create_app
from graph.server.settings import Settings
from graph.types.applications import LoanApplication
from lending.access import STAFF_ROLES, Role
from lending.services.demo import seed_demo
from tests.api.read_queries import event_subscriptions, pools_of
from tests.dbfixtures import admin_context, gql
from tests.factories import create_product

# Generated subscriptions, each run on both paths; `make faults` runs many more.
GENERATED = int(os.environ.get("DIFF_GENERATED_EVENTS", "80"))

APPLY = """mutation($email: String!) { applyForLoan(input: {applicant: {fullName: "Efua Mensah",
  email: $email}, productCode: "PERSONAL-USD", amount: "5000", termMonths: 12}) {
  application { id } userErrors { code } } }"""
DECIDE = """mutation($id: ID!) { decideApplication(input: {applicationId: $id,
  outcome: "APPROVED", reason: "ok"}) { loan { id } userErrors { code } } }"""
WATCH = """subscription { loanEvents { type application { reference status
  decisions { outcome decidedBy } applicant { fullName } } loan { status principal }
  entity { __typename id } } }"""


@pytest.fixture
async def events(database_url: str) -> AsyncIterator[EventListener]:
    listener = EventListener(database_url)
    yield listener
    await listener.close()


async def subscribe(
    app: FastAPI,
    events: EventListener,
    query: str,
    count: int = 1,
    role: Role = Role.ADMIN,
    variables: dict[str, Any] | None = None,
) -> list[Any]:
    """``count`` subscriptions of ``query`` on ``app``'s schema (each listening once its first
    result is awaited)."""
    streams = []
    for number in range(count):
        context = admin_context(app, events, f"sub-{number}", role)
        stream = await app.state.schema.subscribe(
            query, variable_values=variables, context_value=context
        )
        streams.append(stream)
    return streams


async def in_two_roles(app: FastAPI, events: EventListener) -> list[Any]:
    """Fifty subscriptions of WATCH on ``app``: twenty-five as ADMIN, twenty-five as AGENT."""
    return await subscribe(app, events, WATCH, 25) + await subscribe(
        app, events, WATCH, 25, Role.AGENT
    )


async def next_results(streams: list[Any], before: Any = None) -> list[bytes]:
    """The next result of every stream, as the JSON each would send (``before``: an awaitable
    run once every stream is waiting, such as the mutation that makes the event)."""
    tasks = [asyncio.ensure_future(anext(stream)) for stream in streams]
    if before is not None:
        await asyncio.sleep(0.3)  # every subscriber is listening
        await before
    async with asyncio.timeout(20):
        results = await asyncio.gather(*tasks)
    return [_sent(result) for result in results]


async def close(streams: list[Any]) -> None:
    """End the subscriptions as a server does when a client leaves: by cancelling the wait."""
    waiting = [asyncio.ensure_future(anext(stream)) for stream in streams]
    await asyncio.sleep(0.05)
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def apply(client: Any, email: str) -> str:
    found = (await gql(client, APPLY, {"email": email}))["data"]["applyForLoan"]
    assert found["userErrors"] == []
    return str(found["application"]["id"])


async def test_subscribers_of_a_process_share_one_read_of_each_event_object(
    app, client, engine, events, sql
) -> None:
    # given fifty subscribers of one process selecting the same objects, in two roles
    await create_product(engine)
    streams = await in_two_roles(app, events)
    # when an application is submitted
    sql.statements.clear()
    heard = await next_results(streams, apply(client, "efua@example.com"))
    # then each hears it with its objects, and each object was read once for all of them
    event = orjson.loads(heard[0])["data"]["loanEvents"]
    assert event["type"] == "SUBMITTED"
    assert event["application"]["status"] == "SUBMITTED"
    assert event["application"]["applicant"] == {"fullName": "Efua Mensah"}
    assert event["loan"] is None
    assert event["entity"]["__typename"] == "LoanApplication"
    assert set(heard) == {heard[0]}
    reads = [s for s in sql.statements if "row_to_json" in s]
    assert len(sql.statements) > len(reads), "the mutation ran too"
    # application and entity: one statement each, shared; no loan yet: nothing to read
    assert len(reads) == 2, reads
    await close(streams)


async def test_subscribers_asking_the_same_as_the_same_caller_share_one_execution(
    per_field_app, client, engine, events, sql
) -> None:
    # given fifty subscribers in two roles, field by field (a loader's read per relation)
    await create_product(engine)
    many = await in_two_roles(per_field_app, events)
    # when an event is delivered
    sql.statements.clear()
    heard = await next_results(many, apply(client, "many@example.com"))
    # then each role's subscribers were answered by one execution: one read of the
    # decisions (say) per role, not one per subscriber
    decisions = [s for s in sql.statements if "FROM decisions" in s]
    assert len(decisions) == 2, sql.statements
    assert len(set(heard)) == 1
    assert orjson.loads(heard[0])["data"]["loanEvents"]["application"]["status"] == "SUBMITTED"
    await close(many)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "per_field"])
async def test_each_event_shows_what_was_committed_before_it(
    app, per_field_app, client, engine, events, compiled
) -> None:
    served = app if compiled else per_field_app
    await create_product(engine)
    # given one subscriber (one WebSocket context, kept from event to event)
    streams = await subscribe(served, events, WATCH)
    # when an application is submitted, then approved
    app_id: list[str] = []

    async def submit() -> None:
        app_id.append(await apply(client, "kwame@example.com"))

    first = orjson.loads((await next_results(streams, submit()))[0])["data"]["loanEvents"]
    second = orjson.loads((await next_results(streams, gql(client, DECIDE, {"id": app_id[0]})))[0])[
        "data"
    ]["loanEvents"]
    # then the second event shows the decision and the loan: nothing was kept from the first
    assert first["application"]["status"] == "SUBMITTED"
    assert first["application"]["decisions"] == []
    assert second["type"] == "DECIDED"
    assert second["application"]["status"] == "APPROVED"
    assert second["application"]["decisions"] == [{"outcome": "APPROVED", "decidedBy": "admin"}]
    assert second["loan"] == {"status": "APPROVED", "principal": "5000.00"}
    # and once delivered, no event holds a connection of the pool
    await asyncio.sleep(0.1)
    assert served.state.engine.pool.checkedout() == 0
    await close(streams)


async def test_compiled_and_per_field_event_objects_are_identical(
    app, per_field_app, client, engine, events
) -> None:
    await create_product(engine)
    queries = [
        WATCH,
        """subscription { loanEvents { ...E } } fragment E on LoanEvent {
           a1: application { id availableActions latestDecision { outcome } loan { id } }
           loan { id schedule { totalPayable } } entity { id ... on Decision { outcome } } }""",
        """subscription($d: Date) { loanEvents { application { applicant { email
           applications(first: 2) { totalCount edges { node { status } } } } }
           loan { payoffAmount(asOf: $d) delinquency(asOf: $d) { bucket } } } }""",
    ]
    compiled = [s for q in queries for s in await subscribe(app, events, q)]
    per_field = [s for q in queries for s in await subscribe(per_field_app, events, q)]
    app_id: list[str] = []

    async def submit() -> None:
        app_id.append(await apply(client, "ama.b@example.com"))

    both = compiled + per_field
    for heard in [
        await next_results(both, submit()),
        await next_results(both, gql(client, DECIDE, {"id": app_id[0]})),
    ]:
        assert heard[: len(compiled)] == heard[len(compiled) :]
    await close(both)


DECIDE_ASSESSED = """mutation($id: ID!) { decideApplication(input: {applicationId: $id,
  outcome: "APPROVED", reason: "ok", assessment: {score: "712", model: "credit-score@3.2"}}) {
  loan { id } userErrors { code } } }"""
DISBURSE = """mutation($id: ID!) { disburseLoan(input: {loanId: $id}) { userErrors { code } } }"""
PAY = """mutation($id: ID!) { recordPayment(input: {loanId: $id, amount: "100.00"}) {
  userErrors { code } } }"""


@pytest.fixture
async def patient(app: FastAPI, database_url: str) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    """The service on each read path (compiled, field by field) whose reads wait for a free
    connection as long as it takes. With hundreds of subscribers reading at every event on a
    slow machine, a five-second wait ran out on one path and not the other (a retryable 503 on
    one side only): a difference of load, not of answers. How the service sheds load is the
    fault suite's subject."""
    made = tuple(
        create_app(
            Settings(database_url=database_url, db_pool_timeout=300, compiled_reads=compiled),
            database_url,
            app.state.schema,
        )
        for compiled in (True, False)
    )
    yield made  # type: ignore[misc]
    for each in made:
        await each.state.principals.close()
        await each.state.compiled.pool.close()
        await each.state.engine.dispose()


async def test_generated_event_selections_are_identical_both_ways(
    app, patient, client, engine, events, database_url
) -> None:
    # given the demo data, and generated subscriptions on both paths, in every role
    await seed_demo(create_sessionmaker(engine))
    pools = await pools_of(database_url)
    documents = event_subscriptions(app.state.schema._schema, pools, range(GENERATED))
    roles = list(STAFF_ROLES)
    compiled_app, per_field_app = patient
    compiled, per_field = [], []
    for number, (query, variables) in enumerate(documents):
        role = roles[number % len(roles)]
        compiled += await subscribe(compiled_app, events, query, role=role, variables=variables)
        per_field += await subscribe(per_field_app, events, query, role=role, variables=variables)
    made: dict[str, str] = {}

    async def submit() -> None:
        made["application"] = await apply(client, "generated@example.com")

    async def approve() -> None:
        found = await gql(client, DECIDE_ASSESSED, {"id": made["application"]})
        assert found["data"]["decideApplication"]["userErrors"] == []
        made["loan"] = found["data"]["decideApplication"]["loan"]["id"]

    async def run(mutation: str) -> None:
        found = await gql(client, mutation, {"id": made["loan"]})
        assert "errors" not in found, found
        assert next(iter(found["data"].values()))["userErrors"] == []

    # (a generated document that is refused is answered at once, the same way on both paths)
    count = len(compiled)
    first = [asyncio.ensure_future(anext(stream)) for stream in compiled + per_field]
    await asyncio.sleep(0.5)
    refused = {n for n in range(count) if first[n].done() or first[n + count].done()}
    for number in refused:
        one, other = await first[number], await first[number + count]
        assert _sent(one) == _sent(other), documents[number]
        assert one.errors, documents[number]
    live = [n for n in range(count) if n not in refused]
    assert len(live) > GENERATED // 2, "most generated subscriptions are valid"
    streams = [compiled[n] for n in live] + [per_field[n] for n in live]
    waiting = [first[n] for n in live] + [first[n + count] for n in live]

    # when an application is submitted, approved, paid out and paid
    for step in (submit(), approve(), run(DISBURSE), run(PAY)):
        await step
        async with asyncio.timeout(30):
            heard = [_sent(result) for result in await asyncio.gather(*waiting)]
        # then every subscriber heard the same bytes on both paths
        for number, one, other in zip(live, heard[: len(live)], heard[len(live) :], strict=True):
            assert one == other, documents[number]
        waiting = [asyncio.ensure_future(anext(stream)) for stream in streams]
        await asyncio.sleep(0.1)
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


def _sent(result: Any) -> bytes:
    """A subscription result as the server would send it."""
    return orjson.dumps({"data": result.data, "errors": [e.formatted for e in result.errors or ()]})


@pytest.mark.parametrize(
    ("method", "accept"),
    [
        ("POST", "application/json"),
        ("POST", "application/graphql-response+json"),
        ("POST", "*/*"),
        ("GET", "application/json"),
    ],
)
async def test_a_subscription_over_plain_http_is_a_clean_400(client, method, accept) -> None:
    query = "subscription { loanEvents { type } }"
    headers = {"Accept": accept}
    if method == "GET":
        response = await client.get("/graphql", params={"query": query}, headers=headers)
    else:
        response = await client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "subscriptions need a websocket" in error["message"].lower()
    assert "multipart/mixed" in error["message"]


COSTLY = """subscription { loanEvents { application { applicant {
  applications(first: 100) { edges { node { applicant { applications(first: 100) { edges {
  node { loan { schedule { installments { number } } } } } } } } } } } } } }"""
DEEP = (
    "subscription { loanEvents { application { "
    + "loan { application { " * 8
    + "id"
    + " } }" * 8
    + " } } }"
)


@pytest.mark.parametrize("query", [COSTLY, DEEP], ids=["cost", "depth"])
async def test_a_subscription_is_held_to_the_query_limits(app, events, query) -> None:
    [stream] = await subscribe(app, events, query)
    async with asyncio.timeout(5):
        refused = await anext(stream)
    assert refused.data is None
    assert [e.extensions["code"] for e in refused.errors] == ["QUERY_TOO_COMPLEX"]


async def test_a_fault_while_delivering_an_event_is_masked_and_logged(
    per_field_app, client, engine, events, monkeypatch, caplog
) -> None:
    # given a subscriber whose event objects fail to load (a fault, not the client's doing)
    await create_product(engine)

    async def broken(*_: Any) -> None:
        raise RuntimeError("secret detail of a fault")

    monkeypatch.setattr(LoanApplication, "load", broken)
    streams = await subscribe(per_field_app, events, WATCH, 3)
    # when an event is delivered
    heard = await next_results(streams, apply(client, "fault@example.com"))
    # then each subscriber is told only that a fault happened, with its own request id to quote
    for number, sent in enumerate(heard):
        result = orjson.loads(sent)
        assert result["errors"], result  # the application, and the entity (that application)
        for error in result["errors"]:
            assert error["extensions"] == {
                "code": "INTERNAL_SERVER_ERROR",
                "requestId": f"sub-{number}",
            }
            assert error["message"] == f"Internal server error (request id sub-{number})."
        assert "secret" not in sent.decode()
        # and the log has the traceback under that request id
        logged = [r for r in caplog.records if f"request_id=sub-{number}" in r.getMessage()]
        assert any(r.exc_info for r in logged), caplog.text
    await close(streams)
