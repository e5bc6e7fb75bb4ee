"""Bearer tokens verified against the issuer's published keys: real key pairs, tokens signed
by PyJWT, every refusal with its reason."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

import graph.server.tokens as tokens_module
from db.errors import unavailable
from graph.server.tokens import KeysUnavailable, SigningKeys, TokenRefused, TokenVerifier
from lending.access import Budget, Principal, Role
from tests.issuer import AUDIENCE, ISSUER, Issuer, jwks_server


@pytest.fixture
def issuer() -> Issuer:
    found = Issuer()
    for kid, algorithm in (("rsa-1", "RS256"), ("ec-1", "ES256"), ("ed-1", "EdDSA")):
        found.add(kid, algorithm)
    return found


BORROWER_NEEDS = "a BORROWER token needs a verified email (email, email_verified: true)"


def _verifier(source: str, leeway_s: float = 30) -> TokenVerifier:
    return TokenVerifier(SigningKeys(source), ISSUER, AUDIENCE, "lending_role", leeway_s)


@pytest.fixture
def verifier(issuer: Issuer, tmp_path) -> TokenVerifier:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(issuer.jwks()))
    return _verifier(str(path))


async def test_a_borrower_token_names_the_applicant_by_email_with_the_borrowers_budget(
    issuer, tmp_path
):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(issuer.jwks()))
    budget = Budget(1000, 10)
    verifier = TokenVerifier(
        SigningKeys(str(path)), ISSUER, AUDIENCE, "lending_role", 30, borrower_budget=budget
    )
    token = issuer.token(
        "ed-1", role="BORROWER", sub="b-1", email=" Ada@Example.COM ", email_verified=True
    )
    principal = await verifier.principal(token)
    assert principal == Principal(
        name=f"{ISSUER}#b-1", role=Role.BORROWER, budget=budget, email="ada@example.com"
    )
    assert principal.owner == "ada@example.com"
    staff = await verifier.principal(issuer.token("ed-1", role="AGENT"))
    assert (staff.budget, staff.owner) == (None, None)


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1", "ed-1"])
async def test_a_token_signed_by_a_published_key_names_its_caller(issuer, verifier, kid):
    token = issuer.token(kid, role="UNDERWRITER", sub="auth0|42")
    principal = await verifier.principal(token)
    assert principal == Principal(name=f"{ISSUER}#auth0|42", role=Role.UNDERWRITER)
    assert verifier.cached(token) == principal  # remembered until it expires


def _part(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def _forged(algorithm: str, claims: dict, secret: bytes | None = None) -> str:
    """A token as a forger writes it by hand: unsigned (``none``), or signed with HMAC."""
    header = {"alg": algorithm, "typ": "JWT", "kid": "rsa-1"}
    signed = f"{_part(json.dumps(header).encode())}.{_part(json.dumps(claims).encode())}"
    if secret is None:
        return f"{signed}."
    return f"{signed}.{_part(hmac.new(secret, signed.encode(), hashlib.sha256).digest())}"


async def test_each_refusal_says_why(issuer, verifier):
    now = int(time.time())
    other = Issuer()
    other.add("rsa-1")  # the same kid, another key
    rsa_public = (
        issuer.keys["rsa-1"][1]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 60, "lending_role": "ADMIN"}
    refused = {
        "expired": issuer.token("rsa-1", exp=now - 60),
        "not yet": issuer.token("rsa-1", nbf=now + 120),
        "issuer": issuer.token("rsa-1", iss="https://evil.example.com/"),
        "audience": issuer.token("rsa-1", aud="another-api"),
        "no exp": issuer.token("rsa-1", exp=None),
        "no sub": issuer.token("rsa-1", sub=None),
        "no role": issuer.token("rsa-1", role=None),
        "unknown role": issuer.token("rsa-1", role="CUSTOMER"),
        "borrower without an email": issuer.token("rsa-1", role="BORROWER"),
        "borrower with an unverified email": issuer.token(
            "rsa-1", role="BORROWER", email="ada@example.com", email_verified=False
        ),
        "kid": jwt.encode(claims, issuer.keys["rsa-1"][1], "RS256", {"kid": "nobody"}),
        "signature": other.token("rsa-1"),
        "none": _forged("none", claims),
        # the RSA public key used as an HMAC secret: the classic algorithm confusion
        "hs256": _forged("HS256", claims, rsa_public),
        # an EC key's kid under an RS256 header
        "mismatch": jwt.encode(claims, issuer.keys["rsa-1"][1], "RS256", {"kid": "ec-1"}),
        "garbage": "a.b.c",
    }
    reasons = {}
    for name, token in refused.items():
        with pytest.raises(TokenRefused) as why:
            await verifier.principal(token)
        reasons[name] = str(why.value)
    assert reasons == {
        "expired": "it has expired",
        "not yet": "it is not valid yet (nbf or iat)",
        "issuer": f"its issuer is not {ISSUER}",
        "audience": f"it is not meant for {AUDIENCE} (aud)",
        "no exp": "it has no exp claim",
        "no sub": "it has no sub claim",
        "no role": "its lending_role claim names none of the roles ADMIN, UNDERWRITER, "
        "SERVICER, AGENT, BORROWER",
        "unknown role": "its lending_role claim names none of the roles ADMIN, UNDERWRITER, "
        "SERVICER, AGENT, BORROWER",
        "borrower without an email": BORROWER_NEEDS,
        "borrower with an unverified email": BORROWER_NEEDS,
        "kid": "it is signed with a key (kid) the issuer does not publish",
        "signature": "its signature does not verify",
        "none": "its algorithm none is not one of RS256, ES256, EdDSA",
        "hs256": "its algorithm HS256 is not one of RS256, ES256, EdDSA",
        "mismatch": "its algorithm RS256 does not match its key's type",
        "garbage": "it is not a readable JWT",
    }


async def test_clocks_may_differ_by_the_leeway(issuer, tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(issuer.jwks()))
    now = int(time.time())
    late = issuer.token("ec-1", exp=now - 20)
    assert (await _verifier(str(path), leeway_s=30).principal(late)).role is Role.AGENT
    with pytest.raises(TokenRefused, match="expired"):
        await _verifier(str(path), leeway_s=10).principal(late)


async def test_a_remembered_token_is_forgotten_when_it_expires(issuer, verifier):
    token = issuer.token("rsa-1", exp=int(time.time()) + 1)
    assert await verifier.principal(token)
    assert verifier.cached(token) is not None
    await asyncio.sleep(1.1)
    assert verifier.cached(token) is None


async def test_a_rotated_key_is_fetched_once_a_minute_at_most(issuer, monkeypatch):
    with jwks_server(issuer) as (url, fetched):
        verifier = _verifier(url)
        assert await verifier.principal(issuer.token("rsa-1"))
        assert len(fetched) == 1
        # the issuer rotates: a token of the new key, within the minute, is not yet known…
        issuer.add("rsa-2")
        with pytest.raises(TokenRefused, match="kid"):
            await verifier.principal(issuer.token("rsa-2"))
        # …and made-up kids cost no fetch meanwhile
        for n in range(20):
            with pytest.raises(TokenRefused):
                await verifier.principal(issuer.token("rsa-2", sub=f"u{n}"))
        assert len(fetched) == 1
        # a minute later, the unknown kid fetches the keys again, and the new key verifies
        monkeypatch.setattr(tokens_module, "RELOAD_S", 0.0)
        assert (await verifier.principal(issuer.token("rsa-2"))).name == f"{ISSUER}#user-1"
        assert len(fetched) == 2


async def test_keys_that_cannot_be_read_make_a_retryable_answer_not_a_refusal(issuer, tmp_path):
    # an issuer whose JWKS cannot be fetched (nothing listens there)
    with jwks_server(issuer) as (url, _):
        pass
    verifier = _verifier(url)
    token = issuer.token("rsa-1")
    with pytest.raises(KeysUnavailable) as why:
        await verifier.principal(token)
    assert unavailable(why.value) == "the token issuer's signing keys cannot be read"
    # within the retry interval the keys are not fetched again: the answer stays retryable
    began = time.monotonic()
    with pytest.raises(KeysUnavailable):
        await verifier.principal(token)
    assert time.monotonic() - began < 0.5
    # a JWKS file that has become readable is read again once the retry interval is over
    path = tmp_path / "jwks.json"
    verifier = _verifier(str(path))
    with pytest.raises(KeysUnavailable):
        await verifier.principal(token)
    path.write_text(json.dumps(issuer.jwks()))
    verifier.keys._read_at = None  # the retry interval, elapsed
    assert (await verifier.principal(token)).role is Role.AGENT
