"""What browsers need: CORS for the allowed origins only, and gzip for large answers."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from graph.server.app import create_app
from graph.server.settings import Settings
from tests.factories import create_application, create_product

ALLOWED = "https://app.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}
QUERY = {"query": "{ loanProducts { code } }"}


@pytest.fixture(scope="module")
def cors_app(database_url: str, app: FastAPI) -> FastAPI:
    settings = Settings(
        database_url=database_url, cors_origins=f"{ALLOWED}/, http://localhost:5173"
    )
    return create_app(settings, database_url, app.state.schema)


def client_of(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


async def test_an_allowed_origin_passes_the_preflight_and_reads_the_answer(
    cors_app, admin_key
) -> None:
    async with client_of(cors_app, Origin=ALLOWED) as client:
        preflight = await client.options("/graphql", headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ALLOWED
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type"} <= {h.strip() for h in allowed.split(",")}
        assert "POST" in preflight.headers["access-control-allow-methods"]
        answer = await client.post(
            "/graphql", json=QUERY, headers={"Authorization": f"Bearer {admin_key}"}
        )
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == ALLOWED
        assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()
        # A refusal is readable too: the page can tell a bad key from a network failure.
        refused = await client.post("/graphql", json=QUERY)
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == ALLOWED


async def test_another_origin_is_not_let_through(cors_app, admin_key) -> None:
    async with client_of(cors_app, Origin="https://evil.example.net") as client:
        preflight = await client.options("/graphql", headers=PREFLIGHT)
        assert preflight.status_code == 400
        assert "access-control-allow-origin" not in preflight.headers
        answer = await client.post(
            "/graphql", json=QUERY, headers={"Authorization": f"Bearer {admin_key}"}
        )
        assert "access-control-allow-origin" not in answer.headers


async def test_without_cors_origins_no_origin_is_allowed(app) -> None:
    async with client_of(app, Origin=ALLOWED) as client:
        preflight = await client.options("/graphql", headers=PREFLIGHT)
        assert preflight.status_code == 405
        assert "access-control-allow-origin" not in preflight.headers


def test_any_origin_with_credentials_is_refused() -> None:
    with pytest.raises(ValidationError, match="list the origins"):
        Settings(cors_origins="*", cors_allow_credentials=True)
    assert Settings(cors_origins="*").cors_origin_list == ["*"]


async def test_large_answers_are_gzipped_when_accepted(app, admin_key, engine: AsyncEngine) -> None:
    await create_product(engine)
    for _ in range(30):
        await create_application(engine)
    big = {
        "query": "{ applications(first: 30) { edges { node { id reference status "
        "amountRequested termMonths purpose submittedAt applicant { fullName email } } } } }"
    }
    auth = {"Authorization": f"Bearer {admin_key}"}
    async with client_of(app, **auth) as client:
        for _ in range(2):  # the first answer is the full path's, the second the short path's
            plain = await client.post("/graphql", json=big, headers={"Accept-Encoding": "identity"})
            zipped = await client.post("/graphql", json=big, headers={"Accept-Encoding": "gzip"})
            assert "content-encoding" not in plain.headers
            assert zipped.headers["content-encoding"] == "gzip"
            assert int(zipped.headers["content-length"]) < len(plain.content) / 3
            assert zipped.json() == plain.json()
        small = await client.post("/graphql", json=QUERY, headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers
