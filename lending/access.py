"""Who may do what: roles, permissions, and API keys (stored only as hashes)."""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass


class Role(enum.Enum):
    """What an API key's holder is for."""

    ADMIN = "ADMIN"
    UNDERWRITER = "UNDERWRITER"
    SERVICER = "SERVICER"
    AGENT = "AGENT"


class Permission(enum.Enum):
    """Something a caller may be allowed to do."""

    READ = "READ"
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


_AGENT = {Permission.READ, Permission.APPLY, Permission.WITHDRAW}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # Collections agents chase overdue instalments; underwriters do not.
    Role.AGENT: frozenset(_AGENT | {Permission.REQUEST_REMINDER}),
    Role.UNDERWRITER: frozenset(_AGENT | {Permission.DECIDE, Permission.CANCEL_LOAN}),
    Role.SERVICER: frozenset(
        {
            Permission.READ,
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
}


def role_may(role: Role, permission: Permission) -> bool:
    """Whether ``role`` grants ``permission``."""
    return permission in ROLE_PERMISSIONS[role]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the key's name is the actor recorded on everything it does."""

    name: str
    role: Role

    def may(self, permission: Permission) -> bool:
        """Whether this caller's role grants ``permission``."""
        return role_may(self.role, permission)


KEY_PREFIX = "lnd_"


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
