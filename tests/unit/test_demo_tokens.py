"""`lending token issue` and the demo's key pair: refused outside the demo and in production;
in the demo, a token PyJWT verifies with the JWKS written beside a key made once and kept
private, which a demo server's settings point at unless JWT_JWKS names an issuer already."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import jwt
import pytest

from graph.server import demo_tokens
from graph.server.settings import Settings
from graph.server.tokens import SigningKeys, TokenVerifier
from lending.access import Principal, Role
from tests.issuer import lending_token


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(pg_data_dir=tmp_path / "pgdata", jwt_jwks=None, **values)


def _verified(token: str, jwks: Path) -> tuple[dict, dict]:
    """The header and claims of ``token``, verified with the JWKS file as PyJWT reads it."""
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(json.loads(jwks.read_text()))[header["kid"]]
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA"],
        audience=demo_tokens.AUDIENCE,
        issuer=demo_tokens.ISSUER,
    )
    return header, claims


def test_refused_outside_the_demo_and_in_production(tmp_path):
    with pytest.raises(SystemExit, match="add --demo") as refused:
        lending_token(_settings(tmp_path), "--email", "ama@example.com")
    assert refused.value.code != 0
    production = _settings(tmp_path, lending_env="production", metrics_token="m" * 32)
    with pytest.raises(SystemExit, match="refused with LENDING_ENV=production"):
        lending_token(production, "--demo", "--email", "ama@example.com")
    assert not (tmp_path / demo_tokens.FOLDER).exists()  # no key was made
    # nor does a production server take the demo's keys, even told it is the demo
    assert demo_tokens.server_signer(production.model_copy(update={"lending_demo": True})) is None


def test_in_the_demo_it_prints_a_token_the_jwks_in_the_data_folder_verifies(tmp_path):
    printed = lending_token(_settings(tmp_path), "--demo", "--email", "Ama.Owusu@Example.com")
    token = printed.strip()
    assert printed == f"{token}\n"  # only the token: TOKEN=$(lending token issue …) works
    jwks = tmp_path / ".demo-tokens" / "jwks.json"
    header, claims = _verified(token, jwks)
    assert header["alg"] == "EdDSA"
    assert header["kid"].startswith("demo-")
    assert claims == {
        "iss": "lending-demo",
        "aud": "lending",
        "sub": "demo:ama.owusu@example.com",
        "email": "Ama.Owusu@Example.com",
        "email_verified": True,
        "lending_role": "BORROWER",
        "iat": claims["iat"],
        "exp": claims["iat"] + 3600,
    }
    # LENDING_DEMO=true is the demo too; the role claim is the server's JWT_ROLE_CLAIM
    settings = _settings(tmp_path, lending_demo=True, jwt_role_claim="roles")
    agent = lending_token(
        settings, "--email", "a@example.com", "--role", "AGENT", "--ttl", "60", "--sub", "bot-1"
    ).strip()
    _, claims = _verified(agent, jwks)
    assert (claims["roles"], claims["sub"], claims["exp"] - claims["iat"]) == ("AGENT", "bot-1", 60)


async def test_the_servers_verifier_accepts_a_staff_demo_token(tmp_path):
    token = lending_token(_settings(tmp_path), "--demo", "--email", "a@x.io", "--role", "AGENT")
    jwks = tmp_path / ".demo-tokens" / "jwks.json"
    verifier = TokenVerifier(
        SigningKeys(str(jwks)), demo_tokens.ISSUER, demo_tokens.AUDIENCE, "lending_role", 30
    )
    principal = await verifier.principal(token.strip())
    assert principal == Principal(name="lending-demo#demo:a@x.io", role=Role.AGENT)


def test_the_key_pair_is_made_once_and_its_private_half_kept_private(tmp_path):
    settings = _settings(tmp_path)
    first = jwt.get_unverified_header(
        lending_token(settings, "--demo", "--email", "a@x.io").strip()
    )
    folder = tmp_path / ".demo-tokens"
    private = folder / "signing-key.pem"
    made = private.read_bytes()
    second = jwt.get_unverified_header(
        lending_token(settings, "--demo", "--email", "b@x.io").strip()
    )
    assert second["kid"] == first["kid"]
    assert private.read_bytes() == made
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    [public] = json.loads((folder / "jwks.json").read_text())["keys"]
    assert public.keys() == {"kty", "crv", "x", "kid", "use", "alg"}  # no "d"
    assert sorted(p.name for p in folder.iterdir()) == ["jwks.json", "signing-key.pem"]


@pytest.mark.parametrize(
    "args",
    [
        ("--email", "nobody"),
        ("--email", "a@x.io", "--role", "CUSTOMER"),
        ("--email", "a@x.io", "--ttl", "0"),
        ("--email", "a@x.io", "--ttl", str(7 * 24 * 3600 + 1)),
    ],
)
def test_arguments_it_cannot_sign_are_refused(tmp_path, args):
    with pytest.raises(SystemExit) as refused:
        lending_token(_settings(tmp_path), "--demo", *args)
    assert refused.value.code == 2


def test_a_subject_too_long_for_an_actor_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="longer than 200 characters"):
        lending_token(_settings(tmp_path), "--demo", "--email", "a@x.io", "--sub", "s" * 200)


def test_a_demo_server_accepts_demo_tokens_unless_jwks_names_an_issuer(tmp_path, monkeypatch):
    assert demo_tokens.server_signer(_settings(tmp_path)) is None  # not the demo
    demo = _settings(tmp_path, lending_demo=True)
    signer = demo_tokens.server_signer(demo)
    assert signer is not None
    served = signer.accepted_by(demo)
    jwks = str(tmp_path / ".demo-tokens" / "jwks.json")
    assert (served.jwt_jwks, served.jwt_issuer, served.jwt_audience) == (
        jwks,
        "lending-demo",
        "lending",
    )
    # worker processes read the same from the environment `lending serve --demo` exports
    for name, value in signer.environment().items():
        monkeypatch.setenv(name, value)
    worker = Settings()
    assert (worker.jwt_jwks, worker.jwt_issuer, worker.jwt_audience) == (
        jwks,
        "lending-demo",
        "lending",
    )
    # JWT_JWKS set explicitly wins
    explicit = demo.model_copy(update={"jwt_jwks": "https://id.example.com/jwks.json"})
    assert demo_tokens.server_signer(explicit) is None
