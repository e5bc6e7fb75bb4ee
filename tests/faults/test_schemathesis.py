"""Schemathesis, an independent property-based API tester, against a real server with the
demo data: every role (the staff roles with their keys, a borrower with a token signed by an
issuer made here), at least 5,000 generated operations in all; an HTTP 5xx or an
INTERNAL_SERVER_ERROR fails the run, with schemathesis's reproduction (a curl command) printed.

Our own generator (test_fuzz_http.py) only finds what its author thought of; this one brings
its own ideas of GraphQL input (its coverage phase: boundaries, nulls, wrong types per
argument; its fuzzing phase: hypothesis-graphql). The hooks (schemathesis_hooks.py) give it our
scalars. The seed is fixed (FAULTS_SEED=random draws a new one and prints it).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import select, text

from db.embedded import recreate_database
from db.migrate import upgrade_to_head
from db.models import Applicant
from db.session import create_engine, create_sessionmaker
from graph.ids import to_global_id
from graph.node import TABLES
from lending.access import Role
from lending.services import api_keys as key_service
from lending.services.demo import seed_demo
from tests.faults.harness import ROOT, Database, Server, figure
from tests.issuer import AUDIENCE, ISSUER, Issuer

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "60"))  # per operation and role
MINIMUM = 5_000  # generated operations per run, all roles together
SEED = 20261202
ST = Path(sys.executable).with_name("st")


async def demo_database(pg: Database) -> tuple[str, dict[Role, str], list[str], str]:
    """A migrated database with the demo data and its keys; global ids of its rows, and the
    email of a demo applicant (the borrower)."""
    url = await recreate_database(pg.url, "faults_schemathesis")
    await asyncio.to_thread(upgrade_to_head, url)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        sessionmaker = create_sessionmaker(engine)
        await seed_demo(sessionmaker)
        async with sessionmaker() as session, session.begin():
            keys = await key_service.ensure_demo_keys(session)
            found = []
            for type_name, table in TABLES.items():
                name = getattr(table, "name", table)
                rows = await session.execute(text(f"SELECT id FROM {name} ORDER BY id LIMIT 4"))
                found += [to_global_id(type_name, row.id) for row in rows]
            email = await session.scalar(select(Applicant.email).order_by(Applicant.id).limit(1))
    finally:
        await engine.dispose()
    assert email is not None
    return url, keys, found, email


def borrower_token(issuer: Issuer, email: str, jwks: Path) -> tuple[str, dict[str, str]]:
    """A borrower's token for ``email`` and the server settings that accept it."""
    issuer.add("fuzz", "ES256")
    jwks.write_text(json.dumps(issuer.jwks()))
    settings = {"JWT_JWKS": str(jwks), "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE}
    token = issuer.token("fuzz", "BORROWER", sub="fuzz-borrower", email=email, email_verified=True)
    return token, settings


def run_schemathesis(
    base: str, role: Role, key: str, seed: int, ids: list[str], reports: Path
) -> tuple[subprocess.CompletedProcess[str], int]:
    """One schemathesis run as ``role``; its output and how many operations it sent."""
    cmd = [
        str(ST), "run", f"{base}/graphql", "--header", f"Authorization: Bearer {key}",
        "--checks", "no_internal_error", "--exclude-checks", "not_a_server_error",
        "--max-examples", str(EXAMPLES), "--phases", "fuzzing", "--seed", str(seed),
        "--workers", "2",
        "--request-timeout", "30", "--suppress-health-check", "all", "--no-color",
        "--generation-database", "none",
    ]  # fmt: skip
    env = os.environ | {
        "SCHEMATHESIS_HOOKS": "tests.faults.schemathesis_hooks",
        "FUZZ_IDS": ",".join(ids),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    generated = re.search(r"Test cases:\s+(\d+) generated", done.stdout)
    return done, int(generated.group(1)) if generated else 0


async def test_schemathesis_finds_no_server_error(pg: Database, tmp_path: Path) -> None:
    url, keys, ids, email = await demo_database(pg)
    keys[Role.BORROWER], settings = borrower_token(Issuer(), email, tmp_path / "jwks.json")
    chosen = os.environ.get("FAULTS_SEED", str(SEED))
    seed = random.randrange(1 << 30) if chosen == "random" else int(chosen)
    server = Server(url, env=settings)
    await server.start()
    sent: dict[str, int] = {}
    failed: list[str] = []
    began = time.monotonic()
    try:
        async with httpx.AsyncClient(base_url=server.base) as http:  # the token is accepted
            answer = await http.post(
                "/graphql",
                json={"query": "{ viewer { role } }"},
                headers={"Authorization": f"Bearer {keys[Role.BORROWER]}"},
            )
        assert answer.json()["data"] == {"viewer": {"role": "BORROWER"}}, answer.text
        for n, role in enumerate(Role):
            done, count = await asyncio.to_thread(
                run_schemathesis, server.base, role, keys[role], seed + n, ids, tmp_path
            )
            sent[role.value] = count
            if done.returncode != 0:
                failed.append(f"as {role.value} (exit {done.returncode}):\n{done.stdout[-6000:]}")
    finally:
        log = await server.stop()
    total = sum(sent.values())
    figure(
        "schemathesis",
        f"{total} generated operations (seed {seed}, {EXAMPLES} examples per operation) in "
        f"{time.monotonic() - began:.0f} s: {sent}",
    )
    figure("schemathesis", f"failing runs: {len(failed)}")
    assert failed == [], "\n\n".join(failed)
    assert total >= MINIMUM, sent
    assert "Traceback" not in log, log[-3000:]
