"""Who sees what: a borrower signed in with a token sees their own rows only (another person's
object reads as one that does not exist), staff roles see personal data as the policy table
says, and filters on data a role cannot read in full are refused. Every read is sent to the
compiled and to the per-field app, which must answer byte for byte alike."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.embedded import recreate_database
from db.listener import EventListener
from db.migrate import upgrade_to_head
from db.reads.plan import global_id
from db.session import RequestSession, create_engine, create_sessionmaker
from graph.context import Context
from graph.ids import read_id
from graph.schema import build_schema
from graph.server.app import create_app
from graph.server.settings import Settings
from lending.access import STAFF_ROLES, UNLIMITED_BUDGET, Principal, Role
from lending.privacy import mask_email, mask_phone
from lending.services import api_keys as key_service
from lending.services.demo import seed_demo
from tests.bodies import unmetered
from tests.issuer import AUDIENCE, ISSUER, Issuer, jwks_server


@dataclass
class World:
    """The demo book in a database of its own, served by a compiled and a per-field app that
    accept tokens of ``issuer``; staff keys; two borrowers with loans."""

    engine: AsyncEngine
    compiled: FastAPI
    per_field: FastAPI
    issuer: Issuer
    keys: dict[Role, str]
    url: str
    ada: Borrower
    ben: Borrower

    def token(self, email: str, **claims: Any) -> str:
        return self.issuer.token("k", role="BORROWER", email=email, email_verified=True, **claims)

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as connection:
            return await connection.scalar(text(sql), params)

    async def ids(self, sql: str, type_name: str, **params: Any) -> list[str]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(text(sql), params)).all()
        return [global_id(type_name, row[0]) for row in rows]


@dataclass
class Borrower:
    key: int
    email: str
    token: str


async def _post(app: FastAPI, credential: str, query: str, variables: Any) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        return await client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {credential}", "X-Request-ID": "borrowers"},
        )


async def act(world: World, credential: str, query: str, **variables: Any) -> dict[str, Any]:
    """A mutation's answer (sent once: to the compiled app)."""
    found: dict[str, Any] = (await _post(world.compiled, credential, query, variables)).json()
    return found


async def ask(world: World, credential: str, query: str, **variables: Any) -> dict[str, Any]:
    """The answer of both paths, required to be the same bytes (bar the compiled-roots list and
    the budget left, which refills between the two sends)."""
    expected = await _post(world.per_field, credential, query, variables)
    answer = await _post(world.compiled, credential, query, variables)
    body = unmetered(re.sub(rb',"compiled":\[[^\]]*\]', b"", answer.content))
    assert answer.status_code == expected.status_code
    assert body == unmetered(expected.content), (
        f"{query}\ncompiled:  {body!r}\nper field: {expected.content!r}"
    )
    found: dict[str, Any] = orjson.loads(answer.content)
    return found


@pytest.fixture(scope="module")
async def world(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    url = await recreate_database(server_url, "lending_borrowers")
    await asyncio.to_thread(upgrade_to_head, url)
    engine = create_engine(url, pool_size=2, max_overflow=0)
    await seed_demo(create_sessionmaker(engine))
    keys = {}
    async with create_sessionmaker(engine)() as session, session.begin():
        for role in STAFF_ROLES:
            _, keys[role] = await key_service.create_key(
                session, name=f"staff-{role.value.lower()}", role=role, budget=UNLIMITED_BUDGET
            )
    issuer = Issuer()
    issuer.add("k", "ES256")
    jwks = Path(tmp_path_factory.mktemp("jwks")) / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks()))
    tokens = {"jwt_jwks": str(jwks), "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    settings = Settings(database_url=url, **tokens)
    shared = build_schema(settings)
    compiled = create_app(settings, url, shared)
    per_field = create_app(Settings(database_url=url, compiled_reads=False, **tokens), url, shared)
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT a.id, a.email FROM applicants a WHERE EXISTS (SELECT 1 FROM loans l "
                    "JOIN payments p ON p.loan_id = l.id WHERE l.applicant_id = a.id) "
                    "ORDER BY a.id LIMIT 2"
                )
            )
        ).all()
    made = World(engine, compiled, per_field, issuer, keys, url, None, None)  # type: ignore[arg-type]
    made.ada, made.ben = (Borrower(key, email, made.token(email.upper())) for key, email in rows)
    yield made
    for app in (compiled, per_field):
        await app.state.compiled.pool.close()
        await app.state.principals.close()
        await app.state.engine.dispose()
    await engine.dispose()


LISTS = """{ viewer { name role applicant { id email } applications { totalCount }
  loans { totalCount edges { node { id } } } }
  applicants(first: 50) { totalCount edges { node { id email phone } } }
  applications(first: 50) { totalCount edges { node { id applicant { id } } } }
  loans(first: 50) { totalCount edges { node { id applicant { id } } } } }"""


async def test_a_borrower_lists_only_their_own_rows(world):
    ada = world.ada
    data = (await ask(world, ada.token, LISTS))["data"]
    me = global_id("Applicant", ada.key)
    assert data["viewer"]["name"] == f"{ISSUER}#user-1"
    assert data["viewer"]["role"] == "BORROWER"
    assert data["viewer"]["applicant"] == {"id": me, "email": ada.email}
    applications = await world.scalar(
        "SELECT count(*) FROM loan_applications WHERE applicant_id = :a", a=ada.key
    )
    loans = await world.scalar("SELECT count(*) FROM loans WHERE applicant_id = :a", a=ada.key)
    assert loans >= 1
    assert data["viewer"]["applications"]["totalCount"] == applications
    assert data["viewer"]["loans"]["totalCount"] == loans
    assert data["applicants"]["totalCount"] == 1
    assert [e["node"]["id"] for e in data["applicants"]["edges"]] == [me]
    assert data["applications"]["totalCount"] == applications
    assert {e["node"]["applicant"]["id"] for e in data["applications"]["edges"]} == {me}
    assert data["loans"]["totalCount"] == loans
    assert {e["node"]["applicant"]["id"] for e in data["loans"]["edges"]} == {me}


async def test_staff_viewer_has_no_applicant_and_empty_lists(world):
    data = (await ask(world, world.keys[Role.AGENT], LISTS))["data"]
    assert data["viewer"]["role"] == "AGENT"
    assert data["viewer"]["applicant"] is None
    assert data["viewer"]["applications"]["totalCount"] == 0
    assert data["applicants"]["totalCount"] > 2  # staff lists are not scoped


OWNED = {
    "Applicant": "SELECT id FROM applicants WHERE id = :a",
    "LoanApplication": "SELECT id FROM loan_applications WHERE applicant_id = :a",
    "Loan": "SELECT id FROM loans WHERE applicant_id = :a",
    "Decision": "SELECT d.id FROM decisions d JOIN loan_applications x "
    "ON x.id = d.application_id WHERE x.applicant_id = :a",
    "Installment": "SELECT i.id FROM installments i JOIN loans l ON l.id = i.loan_id "
    "WHERE l.applicant_id = :a",
    "Payment": "SELECT p.id FROM payments p JOIN loans l ON l.id = p.loan_id "
    "WHERE l.applicant_id = :a",
    "Reminder": "SELECT r.id FROM reminders r JOIN loans l ON l.id = r.loan_id "
    "WHERE l.applicant_id = :a",
}
NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
BY_ID = """query($a: ID!, $x: ID!, $l: ID!) { applicant(id: $a) { id }
  application(id: $x) { id } loan(id: $l) { id } }"""


async def test_another_persons_objects_read_as_none_and_ones_own_as_themselves(world):
    ada, ben = world.ada, world.ben
    mine: list[str] = []
    theirs: list[str] = []
    for type_name, sql in OWNED.items():
        mine += (await world.ids(sql + " ORDER BY 1 LIMIT 2", type_name, a=ada.key))[:2]
        theirs += (await world.ids(sql + " ORDER BY 1 LIMIT 2", type_name, a=ben.key))[:2]
    missing = global_id("Loan", 10**9)
    product = (await world.ids("SELECT id FROM loan_products LIMIT 1", "LoanProduct"))[0]
    for found in [*mine, product]:
        assert (await ask(world, ada.token, NODE, id=found))["data"]["node"]["id"] == found
    for other in [*theirs, missing]:
        assert (await ask(world, ada.token, NODE, id=other))["data"] == {"node": None}
    answer = await ask(world, ada.token, NODES, ids=[*mine, *theirs, missing])
    assert [n and n["id"] for n in answer["data"]["nodes"]] == [*mine] + [None] * (len(theirs) + 1)
    # the same lookups as staff find everything
    answer = await ask(world, world.keys[Role.SERVICER], NODES, ids=theirs)
    assert [n["id"] for n in answer["data"]["nodes"]] == theirs

    def first(type_name: str, of: list[str]) -> str:
        return next(i for i in of if _type(i) == type_name)

    own = {k: first(t, mine) for k, t in (("a", "Applicant"), ("x", "LoanApplication"))}
    own["l"] = first("Loan", mine)
    other = {k: first(t, theirs) for k, t in (("a", "Applicant"), ("x", "LoanApplication"))}
    other["l"] = first("Loan", theirs)
    data = (await ask(world, ada.token, BY_ID, **own))["data"]
    assert data == {
        "applicant": {"id": own["a"]},
        "application": {"id": own["x"]},
        "loan": {"id": own["l"]},
    }
    data = (await ask(world, ada.token, BY_ID, **other))["data"]
    assert data == {"applicant": None, "application": None, "loan": None}


def _type(global_id_text: str) -> str:
    return read_id(global_id_text, "id")[0]


async def test_staff_only_fields_are_forbidden_and_shared_ones_open(world):
    loan = (await world.ids("SELECT id FROM loans LIMIT 1", "Loan"))[0]
    for query in (
        '{ overdueInstallments(asOf: "2026-06-01") { totalCount } }',
        f'{{ auditTrail(entityId: "{loan}") {{ totalCount }} }}',
    ):
        body = await ask(world, world.ada.token, query)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await ask(
        world,
        world.ada.token,
        """{ loanProducts { code } previewSchedule(input: {productCode: "PERSONAL-USD",
        amount: "1000", termMonths: 6, firstDueDate: "2026-02-01"}) {
        userErrors { code } } }""",
    )
    assert "errors" not in body, body
    assert body["data"]["loanProducts"]


DETAILS = """{ viewer { applicant { email phone } applications(first: 5) { edges { node {
  declaredMonthlyIncome decisions { outcome reason decidedAt assessment { score } } } } } } }"""
STAFF_DETAILS = """{ applications(first: 50, filter: {applicantEmail: null}) { edges { node {
  declaredMonthlyIncome applicant { email phone }
  decisions { assessment { score model factors { name } evidence } } } } } }"""


async def test_a_borrower_reads_their_contact_details_but_no_income_or_assessment(world):
    data = (await ask(world, world.ada.token, DETAILS))["data"]["viewer"]
    assert data["applicant"]["email"] == world.ada.email
    for edge in data["applications"]["edges"]:
        assert edge["node"]["declaredMonthlyIncome"] is None
        for decision in edge["node"]["decisions"]:
            assert decision["assessment"] is None
            assert decision["outcome"]
            assert decision["reason"]
            assert decision["decidedAt"]


async def test_each_staff_role_sees_personal_data_as_the_table_says(world):
    answers = {
        role: (await ask(world, world.keys[role], STAFF_DETAILS))["data"]["applications"]["edges"]
        for role in STAFF_ROLES
    }
    full = answers[Role.ADMIN]
    assert answers[Role.UNDERWRITER] == full
    incomes = [e["node"]["declaredMonthlyIncome"] for e in full]
    assert any(incomes)
    assessed = [d["assessment"] for e in full for d in e["node"]["decisions"] if d["assessment"]]
    assert any(a["factors"] for a in assessed)
    assert any(a["evidence"] for a in assessed)
    for role in (Role.SERVICER, Role.AGENT):
        for edge, whole in zip(answers[role], full, strict=True):
            node, all_of = edge["node"], whole["node"]
            assert node["declaredMonthlyIncome"] is None
            for decision, complete in zip(node["decisions"], all_of["decisions"], strict=True):
                if complete["assessment"] is None:
                    assert decision["assessment"] is None
                    continue
                assert decision["assessment"] == complete["assessment"] | {
                    "factors": None,
                    "evidence": None,
                }
            contact = all_of["applicant"]
            if role is Role.SERVICER:
                assert node["applicant"] == contact
            else:
                assert node["applicant"] == {
                    "email": mask_email(contact["email"]),
                    "phone": contact["phone"] and mask_phone(contact["phone"]),
                }
                assert "•••@" in node["applicant"]["email"]


async def test_filters_on_what_a_role_cannot_read_in_full_are_forbidden(world):
    email = world.ada.email
    refused = {
        Role.AGENT: [
            f'{{ applicants(filter: {{email: "{email}"}}) {{ totalCount }} }}',
            f'{{ applications(filter: {{applicantEmail: "{email}"}}) {{ totalCount }} }}',
            f"""{{ applicants(first: 1) {{ edges {{ node {{
              applications(filter: {{applicantEmail: "{email}"}}) {{ totalCount }} }} }} }} }}""",
        ],
        Role.BORROWER: ['{ applications(filter: {scoreMin: "1"}) { totalCount } }'],
    }
    for role, queries in refused.items():
        credential = world.ada.token if role is Role.BORROWER else world.keys[role]
        for query in queries:
            body = await ask(world, credential, query)
            [error] = body["errors"]
            assert error["extensions"]["code"] == "FORBIDDEN", (role, query, body)
    for role in (Role.ADMIN, Role.UNDERWRITER, Role.SERVICER):
        query = f'{{ applicants(filter: {{email: "{email}"}}) {{ totalCount }} }}'
        assert (await ask(world, world.keys[role], query))["data"]["applicants"]["totalCount"] == 1
    # a borrower may filter on their own email: it names only their rows anyway
    query = f'{{ applications(filter: {{applicantEmail: "{email}"}}) {{ totalCount }} }}'
    assert "errors" not in await ask(world, world.ada.token, query)


TRAIL = """query($id: ID!) { auditTrail(entityId: $id, first: 50) { edges { node {
  actor action before after requestId idempotencyKey } } } }"""


async def test_audit_snapshots_and_others_request_ids_follow_the_table(world):
    # an application submitted by the AGENT key, under a request id and an idempotency key
    applied = await act(world, world.keys[Role.AGENT], AGENT_APPLY)
    application = applied["data"]["applyForLoan"]["application"]["id"]
    trails = {
        role: [
            e["node"]
            for e in (await ask(world, world.keys[role], TRAIL, id=application))["data"][
                "auditTrail"
            ]["edges"]
        ]
        for role in STAFF_ROLES
    }
    [full] = trails[Role.ADMIN]
    assert full["requestId"] == "borrowers"
    assert full["idempotencyKey"] == "audit-snapshot-1"
    assert full["after"]["declared_monthly_income"] == "3100.00"
    # its actor reads its own request ids; other staff roles read none
    [own] = trails[Role.AGENT]
    assert (own["requestId"], own["idempotencyKey"]) == ("borrowers", "audit-snapshot-1")
    for role in (Role.UNDERWRITER, Role.SERVICER):
        [event] = trails[role]
        assert event["requestId"] is None
        assert event["idempotencyKey"] is None
    # snapshots: in full for ADMIN and UNDERWRITER, without financial values for the others
    assert trails[Role.UNDERWRITER][0]["after"] == full["after"]
    for role in (Role.SERVICER, Role.AGENT):
        [event] = trails[role]
        assert event["after"] == {
            k: v for k, v in full["after"].items() if k != "declared_monthly_income"
        }


AGENT_APPLY = """mutation { applyForLoan(input: {applicant: {fullName: "Kwame Boateng",
  email: "kwame.audit@example.com"}, productCode: "PERSONAL-USD", amount: "2500",
  termMonths: 6, declaredMonthlyIncome: "3100", idempotencyKey: "audit-snapshot-1"}) {
  application { id } userErrors { code } } }"""


APPLY = """mutation($email: String!, $dry: Boolean) { applyForLoan(input: {applicant:
  {fullName: "Nana Asante", email: $email}, productCode: "PERSONAL-USD", amount: "2000",
  termMonths: 6, dryRun: $dry}) { dryRun application { id applicant { email } }
  userErrors { code field } } }"""
WITHDRAW = """mutation($id: ID!, $dry: Boolean) { withdrawApplication(input: {applicationId: $id,
  dryRun: $dry}) { dryRun application { status } userErrors { code } } }"""


async def test_a_borrower_applies_and_withdraws_for_themselves_only(world):
    newcomer = world.token("nana.asante@example.com", sub="nana")
    applications = "SELECT count(*) FROM loan_applications"
    before = await world.scalar(applications)
    # for someone else: refused, nothing written
    body = await act(world, newcomer, APPLY, email=world.ada.email)
    assert body["data"]["applyForLoan"]["userErrors"] == [
        {"code": "FORBIDDEN", "field": ["input", "applicant", "email"]}
    ]
    assert await world.scalar(applications) == before
    # a dry run for themselves, then for real
    dry = (await act(world, newcomer, APPLY, email="Nana.Asante@example.com", dry=True))["data"]
    assert dry["applyForLoan"]["dryRun"] is True
    assert dry["applyForLoan"]["userErrors"] == []
    assert await world.scalar(applications) == before
    made = (await act(world, newcomer, APPLY, email="nana.asante@example.com"))["data"]
    application = made["applyForLoan"]["application"]["id"]
    viewer = await ask(world, newcomer, "{ viewer { applicant { email } } }")
    assert viewer["data"]["viewer"]["applicant"] == {"email": "nana.asante@example.com"}
    # another's application: NOT_FOUND, as one that does not exist
    theirs = (
        await world.ids(
            "SELECT id FROM loan_applications WHERE applicant_id = :a AND status IN "
            "('SUBMITTED', 'IN_REVIEW') LIMIT 1",
            "LoanApplication",
            a=world.ada.key,
        )
    ) or (
        await world.ids(
            "SELECT id FROM loan_applications WHERE applicant_id = :a LIMIT 1",
            "LoanApplication",
            a=world.ada.key,
        )
    )
    for target in (theirs[0], global_id("LoanApplication", 10**9)):
        body = await act(world, newcomer, WITHDRAW, id=target)
        assert body["data"]["withdrawApplication"]["userErrors"] == [{"code": "NOT_FOUND"}]
    # their own: a dry run, then for real
    body = await act(world, newcomer, WITHDRAW, id=application, dry=True)
    assert body["data"]["withdrawApplication"]["application"] == {"status": "WITHDRAWN"}
    body = await act(world, newcomer, WITHDRAW, id=application)
    assert body["data"]["withdrawApplication"]["application"] == {"status": "WITHDRAWN"}


async def first_event(world: World, principal: Principal, watch: str, *emails: str) -> Any:
    """The first event ``principal`` hears of ``watch`` while each of ``emails`` applies (as a
    borrower of that email, in that order)."""
    events = EventListener(world.url)
    app = world.compiled
    context = Context(
        request_id="events",
        sessionmaker=app.state.sessionmaker,
        db=RequestSession(app.state.sessionmaker),
        authenticate=app.state.principals.authenticate,
        events=events,
        principal=principal,
        compiled=app.state.compiled,
        over_websocket=True,
    )
    stream = await app.state.schema.subscribe(watch, context_value=context)
    heard = asyncio.ensure_future(anext(stream))
    try:
        await asyncio.sleep(0.3)
        for email in emails:
            credential = world.token(email, sub=email)
            body = await act(world, credential, APPLY, email=email)
            assert body["data"]["applyForLoan"]["userErrors"] == []
        async with asyncio.timeout(20):
            result = await heard
        assert result.errors is None, result.errors
        return orjson.loads(orjson.dumps(result.data))["loanEvents"]
    finally:
        heard.cancel()
        await asyncio.gather(heard, return_exceptions=True)
        await events.close()


WATCH = "subscription { loanEvents { type application { applicant { email phone } } } }"


async def test_a_borrower_hears_the_events_of_their_own_applications_only(world):
    me = Principal("borrower", Role.BORROWER, email="kofi.event@example.com")
    event = await first_event(world, me, WATCH, "someone.else@example.com", me.email)
    assert event["application"]["applicant"]["email"] == "kofi.event@example.com"


async def test_events_show_personal_data_as_the_subscribers_role_may_see_it(world):
    agent = Principal("events-agent", Role.AGENT)
    event = await first_event(world, agent, WATCH, "yaw.event@example.com")
    assert event["application"]["applicant"]["email"] == "y•••@example.com"


CURSORS = """query($after: String, $before: String) {
  applications(first: 50, after: $after, before: $before) {
    edges { cursor node { id applicant { id } } } } }"""


async def test_cursors_of_another_borrowers_pages_lead_only_to_ones_own_rows(world):
    ada, ben = world.ada, world.ben
    theirs = (await ask(world, ben.token, CURSORS))["data"]["applications"]["edges"]
    assert theirs
    me = global_id("Applicant", ada.key)
    for edge in theirs:
        for name in ("after", "before"):
            page = await ask(world, ada.token, CURSORS, **{name: edge["cursor"]})
            found = page["data"]["applications"]["edges"]
            assert {e["node"]["applicant"]["id"] for e in found} <= {me}, (name, found)


async def test_an_issuer_whose_keys_cannot_be_read_gets_a_retryable_503_not_a_401(
    database_url, app
):
    with jwks_server(Issuer()) as (url, _):
        pass  # nothing listens there any more
    tokens = {"jwt_jwks": url, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    served = create_app(
        Settings(database_url=database_url, **tokens), database_url, app.state.schema
    )
    issuer = Issuer()
    issuer.add("k", "ES256")
    try:
        response = await _post(served, issuer.token("k"), "{ loanProducts { code } }", None)
    finally:
        await served.state.principals.close()
        await served.state.compiled.pool.close()
        await served.state.engine.dispose()
    assert response.status_code == 503
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["extensions"]["retryable"] is True
    assert "signing keys cannot be read" in error["message"]


# Last in the module: a report's cost is a large part of a borrower's budget, which then takes a
# while to refill, and the answers compared before (budgets included) must not be read meanwhile.
async def test_reports_are_for_staff_only(world):
    for query in (
        '{ portfolio(asOf: "2026-06-01") { currency outstandingPrincipal } }',
        '{ decisionStats(from: "2026-01-01", to: "2026-06-01", asOf: "2026-06-01") { decisions } }',
    ):
        body = await ask(world, world.ada.token, query)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
