"""Demo bearer tokens: a key pair of the demo's own, so that ``lending serve --demo`` accepts the
tokens ``lending token issue`` signs, with no identity provider.

The pair lives in ``.demo-tokens/`` beside the embedded PostgreSQL's folder (PG_DATA_DIR's
parent; git-ignored): ``signing-key.pem``, an Ed25519 private key (mode 0600) made at the first
use and kept, and ``jwks.json``, its public half, written from it. The key id is derived from
the key (its RFC 7638 thumbprint), so it stays the same as long as the key does. The tokens
name the demo's own issuer and audience; a server accepts them only in demo mode without a
JWT_JWKS of its own, and never in production.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from graph.server.settings import Settings
from lending.access import ACTOR_LENGTH, Role

ISSUER = "lending-demo"
AUDIENCE = "lending"
FOLDER = ".demo-tokens"
PRIVATE_KEY = "signing-key.pem"
JWKS = "jwks.json"
BORROWER = Role.BORROWER.value  # the role of an applicant's own token
ROLES = list(Role.__members__)
DEFAULT_TTL_S = 3600
MAX_TTL_S = 7 * 24 * 3600


def folder(settings: Settings) -> Path:
    """Where the demo's key pair is kept: beside the embedded PostgreSQL's folder."""
    return settings.pg_data_dir.parent / FOLDER


def subject(email: str) -> str:
    """The ``sub`` of a demo token for ``email``, unless told otherwise."""
    return f"demo:{email.lower()}"


@dataclass(frozen=True)
class DemoSigner:
    """The demo's signing key, its key id, and the JWKS file that publishes its public half."""

    kid: str
    key: Ed25519PrivateKey
    jwks: Path

    @classmethod
    def ensure(cls, where: Path) -> DemoSigner:
        """The key pair kept in ``where``, made at the first call; the JWKS written from it."""
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = where / PRIVATE_KEY
        if not path.exists():
            _create_key(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key: delete it to make another.")
        public: dict[str, Any] = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
        kid = "demo-" + _thumbprint(public)[:16]
        text = json.dumps({"keys": [public | {"kid": kid, "use": "sig", "alg": "EdDSA"}]})
        jwks = where / JWKS
        if not jwks.exists() or jwks.read_text() != text:
            _write_new(jwks, text.encode(), 0o644, replace=True)
        return cls(kid, key, jwks)

    def token(
        self,
        email: str,
        role: str,
        role_claim: str,
        ttl_s: int = DEFAULT_TTL_S,
        sub: str | None = None,
    ) -> str:
        """A token for ``email`` (verified) in ``role``, valid ``ttl_s`` seconds from now.
        ValueError when the server would refuse its caller's name (too long)."""
        sub = sub or subject(email)
        if len(f"{ISSUER}#{sub}") > ACTOR_LENGTH:
            raise ValueError(f"its issuer and subject are longer than {ACTOR_LENGTH} characters")
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "email": email,
            "email_verified": True,
            role_claim: role,
            "iat": now,
            "exp": now + ttl_s,
        }
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})

    def environment(self) -> dict[str, str]:
        """The settings under which a server accepts this signer's tokens."""
        return {"JWT_JWKS": str(self.jwks), "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE}

    def accepted_by(self, settings: Settings) -> Settings:
        """``settings`` with this signer's JWKS, issuer and audience in effect."""
        return settings.model_copy(
            update={"jwt_jwks": str(self.jwks), "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
        )


def server_signer(settings: Settings) -> DemoSigner | None:
    """The signer whose tokens a server with ``settings`` should accept: in demo mode, unless
    JWT_JWKS names an issuer already, and never in production."""
    if not settings.lending_demo or settings.production or settings.jwt_jwks:
        return None
    return DemoSigner.ensure(folder(settings))


def _thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint of an OKP public key."""
    members = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"))
    digest = hashlib.sha256(members.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _create_key(path: Path) -> None:
    """A new private key at ``path``, unless another process made one first (theirs stays)."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(path, pem, 0o600, replace=False)


def _write_new(path: Path, content: bytes, mode: int, replace: bool) -> None:
    """Write ``path`` whole or not at all: a reader never sees half of it. Without ``replace``,
    a file already there is left as it is."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(content)
        if replace:
            os.replace(temporary, path)
        else:
            with suppress(FileExistsError):
                os.link(temporary, path)
    finally:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
