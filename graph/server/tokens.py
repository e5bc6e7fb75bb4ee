"""Bearer tokens (JWT) beside API keys, verified with PyJWT against the issuer's public keys.

A token is accepted when it is signed by a key of the configured JWKS (``JWT_JWKS``: a URL or a
file) with an asymmetric algorithm that matches that key's type (RS256 with an RSA key, ES256
with a P-256 key, EdDSA with an Ed25519 key; ``none``, HS* and any other pairing are refused),
when ``iss`` and ``aud`` are the configured ones, and while it is valid (``exp``, ``nbf``, with
``JWT_LEEWAY_S`` of clock difference). Its caller is ``<iss>#<sub>`` (the actor the audit trail
records), in the role of its ``JWT_ROLE_CLAIM`` claim (lending.access.token_principal).

The keys are read at the first token and again when a token names a key id (``kid``) that is
not among them, at most every ``RELOAD_S`` (a rotation is picked up; a stream of tokens with
made-up ids costs one fetch a minute). A verified token is remembered until it expires, so a
caller's requests do not each pay for a signature check. Nothing of a token is ever logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import urllib.request
from collections import OrderedDict
from pathlib import Path
from typing import Any

import jwt

from db.errors import Unavailable
from lending.access import Budget, Principal, Role, token_principal

log = logging.getLogger(__name__)

# The algorithms accepted, and the key type (and curve) each needs.
ALGORITHMS: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "EdDSA": ("OKP", "Ed25519"),
}
RELOAD_S = 60.0  # the keys are read again at most this often
RETRY_S = 5.0  # after a failed read, at most this often (503s meanwhile)
FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 1 << 20
MAX_TOKEN_CHARS = 8192
REMEMBERED = 10_000  # verified tokens remembered at once


class TokenRefused(Exception):
    """Why a token is not accepted (the 401's message says it)."""


class KeysUnavailable(Unavailable):
    """The issuer's keys could not be read, and the token names none held: whether it is valid
    cannot be told now (a retryable 503, not a 401 that would send its holder to sign in)."""


class SigningKeys:
    """The issuer's public keys by key id, read from a JWKS URL or file."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._keys: dict[str | None, tuple[str, Any]] = {}  # kid → (algorithm, public key)
        self._read_at: float | None = None
        self._reading: asyncio.Lock = asyncio.Lock()
        self._unreadable = False  # the last read of the keys failed

    async def key(self, kid: str | None, algorithm: str) -> Any:
        """The public key ``kid`` names, if it may verify ``algorithm``; TokenRefused if not."""
        found = self._keys.get(kid)
        if found is None:
            await self._read_again()
            found = self._keys.get(kid)
        if found is None and kid is None and len(self._keys) == 1:
            found = next(iter(self._keys.values()))  # a token without kid, one key to choose
        if found is None and self._unreadable:
            raise KeysUnavailable("the token issuer's signing keys cannot be read")
        if found is None:
            raise TokenRefused("it is signed with a key (kid) the issuer does not publish")
        key_algorithm, key = found
        if key_algorithm != algorithm:
            raise TokenRefused(f"its algorithm {algorithm} does not match its key's type")
        return key

    async def _read_again(self) -> None:
        async with self._reading:
            now = time.monotonic()
            if self._read_at is not None and now - self._read_at < RELOAD_S:
                return
            self._read_at = now
            try:
                document = await asyncio.to_thread(self._fetch)
                self._keys = _usable_keys(document)
                self._unreadable = False
            except Exception as error:
                self._unreadable = True
                self._read_at = now - RELOAD_S + RETRY_S  # nothing was learnt: try again soon
                log.warning("cannot read the token signing keys from %s: %s", self.source, error)

    def _fetch(self) -> Any:
        if self.source.startswith(("https://", "http://")):
            with urllib.request.urlopen(self.source, timeout=FETCH_TIMEOUT_S) as answer:
                return json.loads(answer.read(MAX_JWKS_BYTES))
        return json.loads(Path(self.source).read_text())


def _usable_keys(document: Any) -> dict[str | None, tuple[str, Any]]:
    """The keys of a JWKS that an accepted algorithm can use, by kid; others are skipped."""
    keys: dict[str | None, tuple[str, Any]] = {}
    for data in document.get("keys", []) if isinstance(document, dict) else []:
        if not isinstance(data, dict) or data.get("use", "sig") != "sig":
            continue
        for algorithm, (kty, curve) in ALGORITHMS.items():
            if data.get("kty") != kty or (curve is not None and data.get("crv") != curve):
                continue
            if data.get("alg", algorithm) != algorithm:
                continue
            try:
                keys[data.get("kid")] = (algorithm, jwt.PyJWK(data, algorithm).key)
            except jwt.PyJWKError as error:
                log.warning("a token signing key is unusable: %s", error)
    return keys


class TokenVerifier:
    """Verifies bearer tokens (see the module docstring) and remembers the verified ones."""

    def __init__(
        self,
        keys: SigningKeys,
        issuer: str,
        audience: str,
        role_claim: str,
        leeway_s: float,
        borrower_budget: Budget | None = None,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.role_claim = role_claim
        self.leeway_s = leeway_s
        self.borrower_budget = borrower_budget  # each borrower's, instead of their role's
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def cached(self, token: str) -> Principal | None:
        """The caller of a token verified before and not expired yet."""
        found = self._verified.get(token)
        if found is None or found[1] <= time.time():
            return None
        return found[0]

    async def principal(self, token: str) -> Principal:
        """The caller a token names; TokenRefused, saying why, when it is not accepted."""
        known = self.cached(token)
        if known is not None:
            return known
        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRefused(f"it is longer than {MAX_TOKEN_CHARS} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as error:
            raise TokenRefused("it is not a readable JWT") from error
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise TokenRefused(f"its algorithm {algorithm} is not one of {', '.join(ALGORITHMS)}")
        kid = header.get("kid")
        key = await self.keys.key(kid if isinstance(kid, str) else None, algorithm)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise TokenRefused("it has expired") from error
        except jwt.ImmatureSignatureError as error:
            raise TokenRefused("it is not valid yet (nbf or iat)") from error
        except jwt.InvalidIssuerError as error:
            raise TokenRefused(f"its issuer is not {self.issuer}") from error
        except jwt.InvalidAudienceError as error:
            raise TokenRefused(f"it is not meant for {self.audience} (aud)") from error
        except jwt.MissingRequiredClaimError as error:
            raise TokenRefused(f"it has no {error.claim} claim") from error
        except jwt.InvalidSignatureError as error:
            raise TokenRefused("its signature does not verify") from error
        except jwt.InvalidTokenError as error:
            raise TokenRefused("it is not a valid JWT") from error
        try:
            principal = token_principal(claims, self.role_claim)
        except ValueError as error:
            raise TokenRefused(str(error)) from error
        if principal.role is Role.BORROWER and self.borrower_budget is not None:
            principal = dataclasses.replace(principal, budget=self.borrower_budget)
        self._verified[token] = (principal, float(claims["exp"]))
        if len(self._verified) > REMEMBERED:
            self._verified.popitem(last=False)
        return principal
