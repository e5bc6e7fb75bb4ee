"""Two paths, one answer: every read answered by the compiled path equals the per-field answer.

Two data sets (the demo data, and the benchmark's generator at a small scale) each get two apps
on the same database: one as served (compiled reads on) and one with ``COMPILED_READS=off``.
Every request is sent to the per-field app once and to the compiled app twice: the first time
the executor splices in the compiled root fields, the second time (the plan now cached) a fully
compiled operation is answered by the short path. The three answers must be the same bytes
(status, data, errors, extensions), apart from ``extensions.compiled`` itself.

The requests are every read document of the README, the benchmarks and the API tests, with
variables drawn from the data, and generated queries (tests/api/read_queries.py), sent as each
role in turn.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import pkgutil
import re
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from graphql import OperationDefinitionNode, OperationType, parse
from sqlalchemy import text

import tests.api
from bench import data as bench_data
from bench import queries as bench_queries
from bench.pgbouncer import PgBouncer
from db.embedded import recreate_database
from db.migrate import upgrade_to_head
from db.reads.plan import global_id
from db.session import create_engine, create_sessionmaker
from graph.agents.catalogue import catalogue
from graph.ids import read_id
from graph.schema import build_schema, schema
from graph.server.app import create_app
from graph.server.settings import Settings
from lending.access import (
    ROLE_BUDGETS,
    STAFF_ROLES,
    UNLIMITED_BUDGET,
    Permission,
    Role,
    role_may,
)
from lending.services import api_keys as key_service
from lending.services.demo import seed_demo
from tests.api.read_queries import NODE_TYPES, Pools, pools_of, read_queries
from tests.api.test_borrowers import OWNED
from tests.bodies import unmetered
from tests.examples import collect
from tests.issuer import AUDIENCE, ISSUER, Issuer

ROOT = Path(__file__).resolve().parents[2]
# Generated documents per run, over both data sets; `make faults` sends many more.
GENERATED = int(os.environ.get("DIFF_GENERATED", "600"))
BENCH_SCALE = 0.003


@dataclass(frozen=True)
class Caller:
    """Who sends a request: a staff role's key, or a borrower's token (with the global ids of
    every row of theirs, and their email, to check that nothing of another's is answered)."""

    role: Role
    credential: str
    email: str | None = None
    owned: frozenset[str] = frozenset()


@dataclass
class DataSet:
    """One database with an app per path, a key per staff role, tokens of a few borrowers, and
    values to draw arguments from."""

    name: str
    compiled: FastAPI
    per_field: FastAPI
    keys: dict[Role, str]
    pools: Pools
    borrowers: list[Caller]

    @property
    def callers(self) -> list[Caller]:
        """Every staff role, then every borrower."""
        return [Caller(role, key) for role, key in self.keys.items()] + self.borrowers


async def _fresh_database(server_url: str, name: str) -> str:
    url = await recreate_database(server_url, name)
    await asyncio.to_thread(upgrade_to_head, url)
    return url


async def _keys(url: str) -> dict[Role, str]:
    engine = create_engine(url, pool_size=1, max_overflow=0)
    keys = {}
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await session.execute(text("DELETE FROM api_keys"))
            for role in STAFF_ROLES:
                _, keys[role] = await key_service.create_key(
                    session, name=f"diff-{role.value.lower()}", role=role, budget=UNLIMITED_BUDGET
                )
    finally:
        await engine.dispose()
    return keys


async def _data_set(server_url: str, name: str, pooler: PgBouncer | None = None) -> DataSet:
    """The data set ``name``; with a ``pooler``, both apps reach it through that PgBouncer."""
    url = await _fresh_database(server_url, f"lending_{'pool' if pooler else 'diff'}_{name}")
    if name == "demo":
        engine = create_engine(url, pool_size=2, max_overflow=0)
        try:
            await seed_demo(create_sessionmaker(engine))
        finally:
            await engine.dispose()
    else:
        await bench_data.generate(url, BENCH_SCALE, seed=11)
    keys = await _keys(url)
    issuer = Issuer()
    issuer.add("diff", "ES256")
    jwks = Path(tempfile.mkdtemp()) / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks()))
    tokens: dict[str, Any] = {
        "jwt_jwks": str(jwks),
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
    }
    served = url
    if pooler is not None:
        served = pooler.url(url)
        tokens |= {"db_pooler": "transaction", "database_listen_url": url}
    settings = Settings(database_url=served, **tokens)
    shared = build_schema(settings)  # one parse and validation per document for both apps
    return DataSet(
        name,
        create_app(settings, served, shared),
        create_app(Settings(database_url=served, compiled_reads=False, **tokens), served, shared),
        keys,
        await pools_of(url),
        await _borrowers(url, issuer),
    )


async def _borrowers(url: str, issuer: Issuer) -> list[Caller]:
    """Three borrowers with loans (their email in another case in the token), and one who has
    not applied yet."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    found = []
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT a.id, a.email FROM applicants a WHERE EXISTS (SELECT 1 FROM "
                        "loans l WHERE l.applicant_id = a.id) ORDER BY a.id LIMIT 3"
                    )
                )
            ).all()
            for key, email in [*rows, (0, "not.yet@example.com")]:
                owned: set[str] = set()
                for type_name, sql in OWNED.items():
                    ids = (await connection.execute(text(sql), {"a": key})).scalars()
                    owned.update(global_id(type_name, found_id) for found_id in ids)
                token = issuer.token(
                    "diff", role="BORROWER", sub=f"b{key}", email=email.upper(), email_verified=True
                )
                found.append(Caller(Role.BORROWER, token, email, frozenset(owned)))
    finally:
        await engine.dispose()
    return found


@pytest.fixture(scope="module")
async def data_sets(server_url: str) -> AsyncIterator[list[DataSet]]:
    """The demo data and a small benchmark book, each in its own database."""
    async with open_data_sets(server_url) as sets:
        yield sets


@asynccontextmanager
async def open_data_sets(
    server_url: str, pooler: PgBouncer | None = None
) -> AsyncIterator[list[DataSet]]:
    """The demo data and a small benchmark book, each in its own database (reached through
    ``pooler`` when given). Borrowers' tokens are charged against an unlimited budget here, as
    the staff keys are (the budgets' own tests check budgets)."""
    patch = pytest.MonkeyPatch()
    patch.setitem(ROLE_BUDGETS, Role.BORROWER, UNLIMITED_BUDGET)
    sets = [
        await _data_set(server_url, "demo", pooler),
        await _data_set(server_url, "bench", pooler),
    ]
    for found in sets:
        for app in (found.compiled, found.per_field):
            transport = httpx.ASGITransport(app=app)
            app.state.test_client = httpx.AsyncClient(transport=transport, base_url="http://test")
    yield sets
    for found in sets:
        for app in (found.compiled, found.per_field):
            await app.state.test_client.aclose()
            await app.state.compiled.pool.close()
            await app.state.principals.close()
            await app.state.engine.dispose()
    patch.undo()


@dataclass
class Tally:
    """What a run compared."""

    requests: int = 0
    compiled_roots: int = 0
    roots: int = 0
    short_path: int = 0
    borrower_requests: int = 0
    per_field_seconds: float = 0.0
    compiled_seconds: float = 0.0


def _without_compiled(body: bytes) -> tuple[bytes, list[str]]:
    match = re.search(rb',"compiled":(\[[^\]]*\])', body)
    if match is None:
        return body, []
    return body[: match.start()] + body[match.end() :], orjson.loads(match.group(1))


async def _post(app: FastAPI, key: str, query: str, variables: dict[str, Any]) -> httpx.Response:
    client = app.state.test_client
    return await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {key}", "X-Request-ID": "diff"},
    )


async def assert_same(
    data_set: DataSet, caller: Caller, query: str, variables: dict[str, Any], tally: Tally
) -> None:
    """Send a request down both paths (the compiled app twice) and compare the bytes; a
    borrower's answer must hold nothing of another applicant's."""
    key, role = caller.credential, caller.role
    began = time.perf_counter()
    expected = await _post(data_set.per_field, key, query, variables)
    tally.per_field_seconds += time.perf_counter() - began
    answered = data_set.compiled.state.compiled.answered
    data = orjson.loads(expected.content).get("data") if expected.status_code == 200 else None
    if caller.role is Role.BORROWER:
        assert_own(caller, data, f"{query}\n{variables}")
        tally.borrower_requests += 1
    tally.requests += 1
    tally.roots += len(data or {})
    for attempt in (1, 2):
        whole = answered["whole"]
        began = time.perf_counter()
        answer = await _post(data_set.compiled, key, query, variables)
        tally.compiled_seconds += time.perf_counter() - began
        body, compiled = _without_compiled(answer.content)
        body, wanted = unmetered(body), unmetered(expected.content)
        context = f"{data_set.name} as {role.value}, attempt {attempt}:\n{query}\n{variables}"
        assert answer.status_code == expected.status_code, context
        assert body == wanted, (
            f"{context}\ncompiled:  {body[:3000]!r}\nper field: {wanted[:3000]!r}"
        )
        if attempt == 1:
            tally.compiled_roots += len(compiled)
            if not data or len(compiled) < len(data):
                return  # not wholly compiled: the short path would not answer it either
        else:
            tally.short_path += answered["whole"] - whole


OWNED_TYPES = frozenset(OWNED)


def assert_own(caller: Caller, data: Any, context: str) -> None:
    """No object of another applicant (by its global id), and no email but the borrower's."""
    if isinstance(data, dict):
        for name, value in data.items():
            if name == "id" and isinstance(value, str) and value not in caller.owned:
                type_name = _type_of(value)
                assert type_name not in OWNED_TYPES or (type_name == "Reminder" and not (value)), (
                    f"{caller.email} was answered {type_name} {value}:\n{context}"
                )
            elif name == "email" and isinstance(value, str):
                assert value == caller.email, f"{caller.email} read {value}:\n{context}"
            else:
                assert_own(caller, value, context)
    elif isinstance(data, list):
        for item in data:
            assert_own(caller, item, context)


def _type_of(value: str) -> str | None:
    try:
        return read_id(value, "id")[0]
    except Exception:
        return None  # not a global id (a reference, say)


def _is_read(document: str) -> bool:
    try:
        parsed = parse(document)
    except Exception:
        return False
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    return bool(operations) and all(o.operation is OperationType.QUERY for o in operations)


def corpus() -> list[str]:
    """Every read document of the README, the catalogue, the benchmarks and the API tests."""
    found: list[str] = []
    found += [op.document for op in catalogue(schema._schema).operations if op.kind == "query"]
    readme = (ROOT / "README.md").read_text()
    found += [b for b in re.findall(r"```graphql\n(.*?)```", readme, re.S) if _is_read(b)]
    found += [bench_queries.OUR_R1, bench_queries.OUR_R2, bench_queries.OUR_R2_OWN]
    for module_info in pkgutil.iter_modules(tests.api.__path__):
        module = importlib.import_module(f"tests.api.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, str) and ("{" in value) and _is_read(value):
                found.append(value)
    return list(dict.fromkeys(found))


def _variables_for(document: str, pools: Pools, variant: int) -> dict[str, Any]:
    """Values for a corpus document's variables, different in each variant."""
    parsed = parse(document)
    values: dict[str, Any] = {}
    everything = [i for kind in NODE_TYPES for i in pools.ids[kind]]
    for definition in parsed.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        for var in definition.variable_definitions or ():
            name = var.variable.name.value
            kind = re.sub(r"[^A-Za-z]", "", _type_name(var.type))
            if kind == "ID":
                typed = {"loanId": "Loan", "applicationId": "LoanApplication"}.get(name)
                pool = pools.ids.get(typed) if typed else None
                candidates = pool or everything
                values[name] = candidates[variant % len(candidates)]
            elif kind == "Int":
                values[name] = [5, 0, 50, 1, 2, 100][variant % 6]
            elif kind == "String":
                cursors = [c for cs in pools.cursors.values() for c in cs] or [None]
                values[name] = [None, cursors[variant % len(cursors)]][variant % 2]
            elif kind == "Date":
                values[name] = pools.dates[variant % len(pools.dates)]
    return values


def _type_name(node: Any) -> str:
    while hasattr(node, "type"):
        node = node.type
    return str(node.name.value)


# Fields answered per field by design (tests/unit/test_read_declarations.py lists them with
# their reasons): a document selecting one is compared all the same, but not counted in the
# compiled share.
PER_FIELD_BY_DESIGN = re.compile(r"\b(settlementQuote|calculation)\b")


async def test_every_corpus_read_is_answered_alike_by_both_paths(data_sets):
    tally, by_design = Tally(), Tally()
    documents = corpus()
    assert len(documents) >= 15, documents
    for offset, data_set in enumerate(data_sets):
        for index, document in enumerate(documents):
            variant = index + offset  # each document with other values and roles on each set
            variables = _variables_for(document, data_set.pools, variant)
            callers = data_set.callers
            counted = by_design if PER_FIELD_BY_DESIGN.search(document) else tally
            await assert_same(
                data_set, callers[variant % len(callers)], document, variables, counted
            )
    print(f"corpus: {len(documents)} documents, {tally}; per field by design: {by_design}")
    assert tally.compiled_roots >= 0.8 * tally.roots


@pytest.fixture(scope="module")
def generated() -> int:
    """How many generated documents a run sends (a module running these tests again, through
    other parts, may send fewer)."""
    return GENERATED


async def test_generated_reads_are_answered_alike_by_both_paths(data_sets, generated):
    tally = Tally()
    started = time.perf_counter()
    per_set = generated // len(data_sets)
    for index, data_set in enumerate(data_sets):
        drawn = collect(
            read_queries(schema._schema, data_set.pools), per_set * 11 // 10, 2026 + index
        )
        examples = list({query: (query, variables) for query, variables in drawn}.values())[
            :per_set
        ]
        for number, (query, variables) in enumerate(examples):
            callers = data_set.callers
            await assert_same(data_set, callers[number % len(callers)], query, variables, tally)
    print(f"generated: {tally} in {time.perf_counter() - started:.1f} s")
    assert tally.requests >= generated
    assert tally.compiled_roots >= 0.5 * tally.roots


APPLY_SEEN = """mutation($input: ApplyForLoanInput!) { applyForLoan(input: $input) {
  application { status amountRequested applicant { fullName email phone
    applications(first: 5) { edges { node { status product { code } } } }
    loans(first: 5) { edges { node { status principal payoffAmount } } } } }
  userErrors { code field } dryRun } }"""
# What two dry runs of one input cannot share: new ids, the cursors and times made with them.
MADE_ANEW = re.compile(
    rb'"(id|cursor|startCursor|endCursor|reference|submittedAt|updatedAt)":"[^"]*"'
)


async def test_a_payload_reads_alike_on_both_paths_for_every_role(data_sets):
    """Every caller who may apply (the staff roles that may, each borrower: for themselves)
    dry-runs an application
    whose payload reaches into the applicant's other applications and loans: both paths answer
    the same, and a borrower's holds nothing of another applicant's."""
    compiled = 0
    for data_set in data_sets:
        for number, caller in enumerate(data_set.callers):
            if not role_may(caller.role, Permission.APPLY):
                continue
            email = caller.email or f"someone{number}@example.com"
            variables = {
                "input": {
                    "applicant": {"fullName": "Payload Reader", "email": email},
                    "productCode": data_set.pools.codes[0],
                    "amount": "5000",
                    "termMonths": 12,
                    "dryRun": True,
                }
            }
            expected = await _post(data_set.per_field, caller.credential, APPLY_SEEN, variables)
            answer = await _post(data_set.compiled, caller.credential, APPLY_SEEN, variables)
            body, keys = _without_compiled(answer.content)
            context = f"{data_set.name} as {caller.role.value} ({email})"
            assert MADE_ANEW.sub(b"", unmetered(body)) == MADE_ANEW.sub(
                b"", unmetered(expected.content)
            ), f"{context}\ncompiled:  {body[:3000]!r}\nper field: {expected.content[:3000]!r}"
            payload = orjson.loads(expected.content)
            assert payload.get("data"), f"{context}: {payload}"
            payload = payload["data"]["applyForLoan"]
            if caller.role is Role.BORROWER:
                assert_own(caller, payload, context)
            compiled += bool(keys)
    assert compiled >= len(data_sets)  # at least the applicants who had none open
