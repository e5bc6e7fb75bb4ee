"""A token issuer for tests: key pairs made here (cryptography), tokens signed by PyJWT, and
the JWKS that publishes their public halves, as an identity provider would; and the demo's own
issuer, `lending token issue`, run in-process."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest.mock import patch

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from graph import cli
from graph.server.settings import Settings

ISSUER = "https://id.example.com/"
AUDIENCE = "lending-api"


def new_key(algorithm: str) -> Any:
    """A fresh private key for ``algorithm`` (RS256, ES256 or EdDSA)."""
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def public_jwk(kid: str, algorithm: str, key: Any) -> dict[str, Any]:
    """The JWK of ``key``'s public half, named ``kid``."""
    kind = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[algorithm]
    found: dict[str, Any] = kind.to_jwk(key.public_key(), as_dict=True)
    return found | {"kid": kid, "use": "sig"}


@dataclass
class Issuer:
    """Signing keys by kid, each with its algorithm."""

    keys: dict[str, tuple[str, Any]] = field(default_factory=dict)

    def add(self, kid: str, algorithm: str = "RS256") -> None:
        self.keys[kid] = (algorithm, new_key(algorithm))

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(kid, alg, key) for kid, (alg, key) in self.keys.items()]}

    def token(self, kid: str, role: str | None = "AGENT", **claims: Any) -> str:
        """A token signed with key ``kid``: issuer, audience, a subject, an hour of validity and
        the role, unless ``claims`` say otherwise (a claim given as None is left out)."""
        algorithm, key = self.keys[kid]
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "user-1",
            "iat": now,
            "exp": now + 3600,
            "lending_role": role,
        } | claims
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})


@contextmanager
def jwks_server(issuer: Issuer) -> Iterator[tuple[str, list[float]]]:
    """An HTTP server on 127.0.0.1 publishing ``issuer``'s JWKS as it is at each request; the
    URL, and the times it was fetched."""
    fetched: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(time.monotonic())
            body = json.dumps(issuer.jwks()).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", fetched
    finally:
        server.shutdown()
        server.server_close()


def lending_token(settings: Settings, *args: str) -> str:
    """What `lending token issue ARGS` prints on stdout with ``settings`` (run in-process; its
    refusals raise SystemExit)."""
    with (
        patch.object(cli, "get_settings", return_value=settings),
        patch.object(cli.logs, "configure"),  # the test session's logging stays as it is
        redirect_stdout(io.StringIO()) as out,
    ):
        cli.main(["token", "issue", *args])
    return out.getvalue()
