"""The demo data and the `lending` command, as `make run` uses them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from decimal import Decimal

import httpx
import jwt
from sqlalchemy import text

from db.embedded import recreate_database, with_database
from db.session import create_sessionmaker
from graph.server import demo_tokens
from graph.server.app import create_app
from graph.server.settings import Settings
from lending.access import Budget, Role, demo_key
from lending.services import api_keys as key_service
from lending.services import audit as audit_service
from lending.services.demo import APPLICATIONS, seed_demo
from tests.dbfixtures import gql, http_client
from tests.factories import create_product
from tests.issuer import lending_token
from tests.servers import free_port


async def test_demo_covers_every_status_and_loads_once(engine):
    sessions = create_sessionmaker(engine)
    assert await seed_demo(sessions) is True
    assert await seed_demo(sessions) is False  # a second run leaves the data alone
    async with engine.connect() as connection:
        statuses = set(
            (await connection.execute(text("SELECT DISTINCT status FROM loan_applications")))
            .scalars()
            .all()
        )
        counts = (
            await connection.execute(
                text(
                    "SELECT (SELECT count(*) FROM applicants), (SELECT count(*) FROM loans), "
                    "(SELECT count(*) FROM decisions WHERE length(reason) > 0), "
                    "(SELECT count(DISTINCT currency) FROM loan_products)"
                )
            )
        ).one()
        amina = (
            await connection.execute(
                text(
                    "SELECT a.amount_requested, a.status FROM loan_applications a "
                    "JOIN applicants p ON p.id = a.applicant_id WHERE p.full_name = 'Amina Patel'"
                )
            )
        ).one()
    assert statuses == {"SUBMITTED", "IN_REVIEW", "APPROVED", "REJECTED", "WITHDRAWN"}
    applicants, loans, decisions, currencies = counts
    assert applicants >= 20
    assert loans >= 5
    assert decisions >= 15
    assert currencies == 2
    assert str(amina.amount_requested) == "25000.00"


async def test_demo_data_dates_nothing_after_the_moment_it_is_loaded(engine):
    loaded = await _now(engine)
    assert await seed_demo(create_sessionmaker(engine)) is True
    async with engine.connect() as connection:
        latest = (
            await connection.execute(
                text(
                    "SELECT (SELECT max(submitted_at) FROM loan_applications), "
                    "(SELECT max(decided_at) FROM decisions), "
                    "(SELECT max(approved_at) FROM loans), "
                    "(SELECT max(recorded_at) FROM payments), "
                    "(SELECT max(received_on) FROM payments), "
                    "(SELECT max(disbursed_on) FROM loans), "
                    "(SELECT max(requested_at) FROM reminders)"
                )
            )
        ).one()
    after = await _now(engine)
    *instants, received, disbursed, reminded = latest
    assert all(instant <= after for instant in instants), (loaded, after, latest)
    assert received <= after.date()
    assert disbursed <= after.date()
    assert reminded <= after


async def _now(engine):
    async with engine.connect() as connection:
        return await connection.scalar(text("SELECT now()"))


DEMO_LOANS = """
{ loans(first: 50) { edges { node {
    status delinquency { bucket } writtenOffAmount settlementRebate closedReason
    payments(first: 100) { edges { node { reversed settlement } } }
    reminders { edges { node { channel status } } }
    application { decisions { assessment { score model factors { name } evidence } } }
} } } }
"""


async def test_demo_shows_every_servicing_situation(engine, client):
    from tests.dbfixtures import gql

    await seed_demo(create_sessionmaker(engine))
    body = await gql(client, DEMO_LOANS)
    loans = [e["node"] for e in body["data"]["loans"]["edges"]]
    active_buckets = {loan["delinquency"]["bucket"] for loan in loans if loan["status"] == "ACTIVE"}
    assert active_buckets == {"CURRENT", "DPD_1_30", "DPD_31_60", "DPD_61_90", "DPD_91_PLUS"}
    assert {loan["status"] for loan in loans} == {
        "APPROVED",
        "ACTIVE",
        "PAID_OFF",
        "CANCELLED",
        "WRITTEN_OFF",
    }
    reversed_payments = [
        p for loan in loans for p in loan["payments"]["edges"] if p["node"]["reversed"]
    ]
    assert len(reversed_payments) == 1
    # the agent's loop: an assessed decision, reminders queued and delivered, every ending
    assessed = [
        d["assessment"]
        for loan in loans
        for d in loan["application"]["decisions"]
        if d["assessment"] is not None
    ]
    assert assessed
    assert all(
        a["model"] == "credit-score@3.2" and a["factors"] and a["evidence"] for a in assessed
    )
    reminders = {
        (r["node"]["channel"], r["node"]["status"])
        for loan in loans
        for r in loan["reminders"]["edges"]
    }
    assert reminders == {("SMS", "QUEUED"), ("EMAIL", "DELIVERED")}
    [written_off] = [loan for loan in loans if loan["status"] == "WRITTEN_OFF"]
    assert Decimal(written_off["writtenOffAmount"]) > 0
    [cancelled] = [loan for loan in loans if loan["status"] == "CANCELLED"]
    assert cancelled["closedReason"]
    [settled] = [loan for loan in loans if loan["settlementRebate"] is not None]
    assert settled["status"] == "PAID_OFF"
    assert [p["node"]["settlement"] for p in settled["payments"]["edges"]][-1] is True
    # and every step of it left the audit trail intact
    async with create_sessionmaker(engine)() as session:
        verified = await audit_service.verify(session)
    assert verified.broken is None
    assert verified.events > 0


async def test_serve_migrates_seeds_and_answers(server_url, tmp_path):
    # given an empty database named by DATABASE_URL (and a data folder of the test's own)
    name = "lending_cli_test"
    await recreate_database(server_url, name)
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": with_database(server_url, name),
        "LOG_LEVEL": "WARNING",
        "PG_DATA_DIR": str(tmp_path / "pgdata"),
    }
    # when `lending serve --demo` starts
    process = subprocess.Popen(  # noqa: ASYNC220 - a server in its own process, by design
        [sys.executable, "-m", "graph.cli", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            for _ in range(100):
                try:
                    ready = await client.get("/readyz")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError(process.stderr.read().decode() if process.stderr else "")
            # then it is ready, with GraphiQL and the demo data
            assert ready.status_code == 200
            page = await client.get("/graphql", headers={"accept": "text/html"})
            assert "graphiql" in page.text.lower()
            query = {"query": "{ applicants { totalCount } }"}
            refused = await client.post("/graphql", json=query)
            assert refused.status_code == 401
            headers = {"Authorization": f"Bearer {demo_key(Role.AGENT)}"}
            body = (await client.post("/graphql", json=query, headers=headers)).json()
            assert body["data"]["applicants"]["totalCount"] >= 20
            # and it accepts the demo's tokens (a staff role's here)
            settings = Settings(pg_data_dir=tmp_path / "pgdata", lending_demo=True)
            agent = lending_token(settings, "--email", "a@x.io", "--role", "AGENT").strip()
            headers = {"Authorization": f"Bearer {agent}"}
            body = (await client.post("/graphql", json=query, headers=headers)).json()
            assert body["data"]["applicants"]["totalCount"] >= 20
            # a demo borrower's token reads that applicant's rows only
            first = APPLICATIONS[0][1]
            borrower = lending_token(settings, "--email", first.upper()).strip()
            mine = {"query": "{ viewer { applicant { email } } applicants { totalCount } }"}
            headers = {"Authorization": f"Bearer {borrower}"}
            body = (await client.post("/graphql", json=mine, headers=headers)).json()
            assert body["data"] == {
                "viewer": {"applicant": {"email": first}},
                "applicants": {"totalCount": 1},
            }
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    # it printed a borrower token of the first demo applicant, and how to use it
    printed = process.stderr.read().decode() if process.stderr else ""
    assert f"GraphiQL http://127.0.0.1:{port}/graphql, Headers tab:" in printed
    [token] = [w for w in printed.split() if w.count(".") == 2 and w.startswith("eyJ")]
    jwks = json.loads((tmp_path / ".demo-tokens" / "jwks.json").read_text())
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]].key
    claims = jwt.decode(token, key, ["EdDSA"], audience="lending", issuer="lending-demo")
    first = APPLICATIONS[0][1]
    assert (claims["email"], claims["lending_role"]) == (first, "BORROWER")


async def test_an_app_with_the_demo_settings_accepts_demo_tokens(database_url, app, tmp_path):
    await create_product(app.state.engine)
    settings = Settings(database_url=database_url, pg_data_dir=tmp_path / "pg", lending_demo=True)
    signer = demo_tokens.server_signer(settings)
    assert signer is not None
    served = create_app(signer.accepted_by(settings), database_url, app.state.schema)
    agent = lending_token(settings, "--email", "a@x.io", "--role", "AGENT").strip()
    async with http_client(served, agent) as client:
        body = await gql(client, "{ loanProducts { code } }")
    assert body["data"] == {"loanProducts": [{"code": "PERSONAL-USD"}]}
    # a token of another demo's key pair is not one of these
    other = lending_token(
        Settings(pg_data_dir=tmp_path / "other" / "pg", lending_demo=True),
        "--email",
        "a@x.io",
        "--role",
        "AGENT",
    ).strip()
    async with http_client(served, other) as client:
        refused = await client.post("/graphql", json={"query": "{ loanProducts { code } }"})
    assert refused.status_code == 401
    assert "kid" in refused.json()["errors"][0]["message"]


def lending(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `lending` command against the test database."""
    env = os.environ | {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "graph.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


async def test_api_key_commands(database_url, engine):
    created = await asyncio.to_thread(
        lending, database_url, "api-key", "create", "--name", "ops.bot", "--role", "SERVICER"
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("lnd_")
    async with create_sessionmaker(engine)() as session:
        principal = await key_service.authenticate(session, f"Bearer {key}")
    assert principal is not None
    assert (principal.name, principal.role) == ("ops.bot", Role.SERVICER)
    assert principal.budget is None  # its role's
    assert "with a budget of 2000000/100000" in created.stderr
    again = await asyncio.to_thread(
        lending, database_url, "api-key", "create", "--name", "ops.bot", "--role", "AGENT"
    )
    assert again.returncode == 2
    assert "exists already" in again.stderr
    listed = await asyncio.to_thread(lending, database_url, "api-key", "list")
    assert "ops.bot" in listed.stdout
    assert key not in listed.stdout
    revoked = await asyncio.to_thread(lending, database_url, "api-key", "revoke", "ops.bot")
    assert revoked.returncode == 0
    async with create_sessionmaker(engine)() as session:
        assert await key_service.authenticate(session, f"Bearer {key}") is None
    listed = await asyncio.to_thread(lending, database_url, "api-key", "list")
    assert "revoked" in listed.stdout
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM api_keys WHERE name = 'ops.bot'"))


async def test_a_key_created_with_a_budget_spends_it(database_url, engine):
    created = await asyncio.to_thread(
        lending,
        database_url,
        "api-key",
        "create",
        "--name",
        "batch.bot",
        "--role",
        "AGENT",
        "--budget",
        "40000/500",
    )
    assert created.returncode == 0, created.stderr
    async with create_sessionmaker(engine)() as session:
        principal = await key_service.authenticate(session, f"Bearer {created.stdout.strip()}")
    assert principal is not None
    assert principal.cost_budget == Budget(40_000, 500)
    refused = await asyncio.to_thread(
        lending,
        database_url,
        "api-key",
        "create",
        "--name",
        "x",
        "--role",
        "AGENT",
        "--budget",
        "1_000/5",
    )
    assert refused.returncode == 2
    assert "CAPACITY/RESTORE" in refused.stderr
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM api_keys WHERE name = 'batch.bot'"))


async def test_purge_command(database_url):
    purged = await asyncio.to_thread(lending, database_url, "purge-idempotency-keys")
    assert purged.returncode == 0
    assert "purged 0 idempotency keys older than 24.0 h" in purged.stdout
