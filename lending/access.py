"""Who may do what: roles, permissions, and API keys (stored only as hashes)."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Role(enum.Enum):
    """What a caller is for: a staff role (API keys or tokens), or a borrower (tokens only)."""

    ADMIN = "ADMIN"
    UNDERWRITER = "UNDERWRITER"
    SERVICER = "SERVICER"
    AGENT = "AGENT"
    BORROWER = "BORROWER"  # the applicant owning the token's verified email; own rows only


# The roles an API key may have: a borrower signs in with a token naming their email.
STAFF_ROLES = (Role.ADMIN, Role.UNDERWRITER, Role.SERVICER, Role.AGENT)


class Permission(enum.Enum):
    """Something a caller may be allowed to do."""

    READ = "READ"  # a borrower: their own rows only
    OVERSEE = "OVERSEE"  # read across applicants: overdue instalments, the audit trail
    APPLY = "APPLY"
    WITHDRAW = "WITHDRAW"
    DECIDE = "DECIDE"
    DISBURSE = "DISBURSE"
    RECORD_PAYMENT = "RECORD_PAYMENT"
    REVERSE_PAYMENT = "REVERSE_PAYMENT"
    SETTLE_LOAN = "SETTLE_LOAN"
    CANCEL_LOAN = "CANCEL_LOAN"
    WRITE_OFF_LOAN = "WRITE_OFF_LOAN"
    REQUEST_REMINDER = "REQUEST_REMINDER"
    REPORT_REMINDER = "REPORT_REMINDER"
    MANAGE_PRODUCTS = "MANAGE_PRODUCTS"


_AGENT = {Permission.READ, Permission.OVERSEE, Permission.APPLY, Permission.WITHDRAW}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # Collections agents chase overdue instalments; underwriters do not.
    Role.AGENT: frozenset(_AGENT | {Permission.REQUEST_REMINDER}),
    Role.UNDERWRITER: frozenset(_AGENT | {Permission.DECIDE, Permission.CANCEL_LOAN}),
    Role.SERVICER: frozenset(
        {
            Permission.READ,
            Permission.OVERSEE,
            Permission.DISBURSE,
            Permission.RECORD_PAYMENT,
            Permission.REVERSE_PAYMENT,
            Permission.SETTLE_LOAN,
            Permission.CANCEL_LOAN,
            Permission.WRITE_OFF_LOAN,
            Permission.REQUEST_REMINDER,
            Permission.REPORT_REMINDER,
        }
    ),
    Role.ADMIN: frozenset(Permission),
    # For themselves: apply, withdraw, and read their own applications and loans.
    Role.BORROWER: frozenset({Permission.READ, Permission.APPLY, Permission.WITHDRAW}),
}


def role_may(role: Role, permission: Permission) -> bool:
    """Whether ``role`` grants ``permission``."""
    return permission in ROLE_PERMISSIONS[role]


@dataclass(frozen=True)
class Budget:
    """A key's bucket of cost points: it holds at most ``capacity`` and refills at ``restore``
    points a second; every request takes its cost from it (graph.server.budgets)."""

    capacity: int
    restore: int

    @classmethod
    def parse(cls, text: str) -> Budget:
        """``"CAPACITY/RESTORE"``, both whole numbers of points above zero (``"2000000/100000"``);
        ValueError otherwise."""
        capacity, slash, restore = text.partition("/")
        if not slash or not _POSITIVE.fullmatch(capacity) or not _POSITIVE.fullmatch(restore):
            raise ValueError("a budget is CAPACITY/RESTORE, two whole numbers above zero")
        if int(capacity) > MAX_BUDGET or int(restore) > MAX_BUDGET:
            raise ValueError(f"a budget's numbers are at most {MAX_BUDGET}")
        return cls(int(capacity), int(restore))

    def __str__(self) -> str:
        return f"{self.capacity}/{self.restore}"


_POSITIVE = re.compile(r"[1-9][0-9]{0,17}")
MAX_BUDGET = 10**15

# Every role's keys may burst to a few of the costliest queries allowed (500,000 points) and
# then run one such query every few seconds; a light query costs tens of points. Staff
# consoles get more than agents, which run in loops.
ROLE_BUDGETS: dict[Role, Budget] = {
    Role.ADMIN: Budget(5_000_000, 250_000),
    Role.UNDERWRITER: Budget(2_000_000, 100_000),
    Role.SERVICER: Budget(2_000_000, 100_000),
    Role.AGENT: Budget(2_000_000, 100_000),
    Role.BORROWER: Budget(500_000, 25_000),  # one person's screens
}


# For a load generator's key, whose throughput is what is measured.
UNLIMITED_BUDGET = Budget(MAX_BUDGET, MAX_BUDGET)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the key's name is the actor recorded on everything it does.
    ``budget`` is the key's own, when it was given one (else its role's: ``ROLE_BUDGETS``).
    A borrower's ``email`` (verified, lower case) names the applicant they are."""

    name: str
    role: Role
    budget: Budget | None = None
    email: str | None = None

    @property
    def owner(self) -> str | None:
        """For a borrower, the email whose applicant's rows alone they may read; else None."""
        return self.email if self.role is Role.BORROWER else None

    @property
    def cost_budget(self) -> Budget:
        """The budget this caller's requests are charged against."""
        return self.budget or ROLE_BUDGETS[self.role]

    def may(self, permission: Permission) -> bool:
        """Whether this caller's role grants ``permission``."""
        return role_may(self.role, permission)


KEY_PREFIX = "lnd_"
ACTOR_LENGTH = 200  # the most characters of an actor's name, as the audit trail stores it
MAX_EMAIL_LENGTH = 254  # as applicants' emails are stored


def bearer_credential(authorization: str | None) -> str | None:
    """What follows ``Bearer`` in an Authorization header (an API key or a token), if any."""
    scheme, _, credential = (authorization or "").strip().partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and credential else None


def is_token(credential: str) -> bool:
    """Whether a bearer credential is a JWT (three dot-separated parts) rather than an API key."""
    return credential.count(".") == 2 and not credential.startswith(KEY_PREFIX)


def token_principal(claims: Mapping[str, Any], role_claim: str) -> Principal:
    """The caller a verified token's ``claims`` name: ``<iss>#<sub>``, in the role its
    ``role_claim`` names. ValueError, saying why, when they name no caller of this service."""
    role = claims.get(role_claim)
    if not isinstance(role, str) or role not in Role.__members__:
        roles = ", ".join(Role.__members__)
        raise ValueError(f"its {role_claim} claim names none of the roles {roles}")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise ValueError("it names no subject (sub)")
    name = f"{claims.get('iss')}#{subject}"
    if len(name) > ACTOR_LENGTH:
        raise ValueError(f"its issuer and subject are longer than {ACTOR_LENGTH} characters")
    if role != Role.BORROWER.value:
        return Principal(name=name, role=Role(role))
    email = claims.get("email")
    if not isinstance(email, str) or claims.get("email_verified") is not True:
        raise ValueError("a BORROWER token needs a verified email (email, email_verified: true)")
    email = email.strip().lower()
    if not 3 <= len(email) <= MAX_EMAIL_LENGTH or "@" not in email:
        raise ValueError("its email is not an email address")
    return Principal(name=name, role=Role.BORROWER, email=email)


def new_api_key() -> str:
    """A fresh random API key (shown once; only its hash is stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """The stored form of a key: keys are long and random, so a plain SHA-256 suffices."""
    return hashlib.sha256(key.encode()).hexdigest()


def demo_key(role: Role) -> str:
    """The fixed, public key of a demo role (refused in production)."""
    return f"{KEY_PREFIX}demo_{role.value.lower()}"


def demo_key_name(role: Role) -> str:
    """The name (actor) of a demo role's key."""
    return f"demo-{role.value.lower()}"
