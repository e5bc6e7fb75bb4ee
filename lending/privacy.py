"""Personal data by role: one policy table, and the masks it names.

Each personal field declares which kind of data it holds (``Data``); what a role sees of that
kind is in ``POLICY``, and nowhere else. The per-field resolvers call ``shown``; the read
compiler asks ``access`` and renders the same masks in SQL (db.reads.sql), and a differential
test requires both to answer alike. Audit snapshots repeat these values under their column
names: ``snapshot`` applies the same rows to them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any

from lending.access import Role


class Data(enum.Enum):
    """A kind of personal or confidential data."""

    CONTACT = "CONTACT"  # an applicant's email and phone
    FINANCIAL = "FINANCIAL"  # declared income; an assessment's factors and evidence
    ASSESSMENT = "ASSESSMENT"  # the assessment behind a decision (score, model)
    SNAPSHOT = "SNAPSHOT"  # the audit trail's before/after states
    OTHERS_REQUESTS = "OTHERS_REQUESTS"  # other actors' request ids and idempotency keys


class Access(enum.Enum):
    """What a role sees of a kind of data."""

    FULL = "full"
    MASKED = "masked"  # contact: a valid shape, most characters hidden; snapshots: per row
    HIDDEN = "null"  # null (or, inside a snapshot, left out)


class Mask(enum.Enum):
    """How a masked value keeps its shape."""

    EMAIL = "EMAIL"  # the first character and the domain: a•••@example.com
    PHONE = "PHONE"  # the last two characters; digits before them hidden: +•• •••• ••42


FULL, MASKED, HIDDEN = Access.FULL, Access.MASKED, Access.HIDDEN
ADMIN, UNDERWRITER, SERVICER, AGENT, BORROWER = (
    Role.ADMIN,
    Role.UNDERWRITER,
    Role.SERVICER,
    Role.AGENT,
    Role.BORROWER,
)

# The policy. A borrower reads only their own rows (graph.scope), so BORROWER's column is what
# they see of their own data.
POLICY: Mapping[Data, Mapping[Role, Access]] = {
    Data.CONTACT: {ADMIN: FULL, UNDERWRITER: FULL, SERVICER: FULL, AGENT: MASKED, BORROWER: FULL},
    Data.FINANCIAL: {
        ADMIN: FULL,
        UNDERWRITER: FULL,
        SERVICER: HIDDEN,
        AGENT: HIDDEN,
        BORROWER: HIDDEN,
    },
    Data.ASSESSMENT: {
        ADMIN: FULL,
        UNDERWRITER: FULL,
        SERVICER: FULL,
        AGENT: FULL,
        BORROWER: HIDDEN,
    },
    Data.SNAPSHOT: {
        ADMIN: FULL,
        UNDERWRITER: MASKED,
        SERVICER: MASKED,
        AGENT: MASKED,
        BORROWER: HIDDEN,
    },
    Data.OTHERS_REQUESTS: {
        ADMIN: FULL,
        UNDERWRITER: HIDDEN,
        SERVICER: HIDDEN,
        AGENT: HIDDEN,
        BORROWER: HIDDEN,
    },
}

# The personal values an audit snapshot may hold, by column name.
SNAPSHOT_FIELDS: Mapping[str, tuple[Data, Mask | None]] = {
    "email": (Data.CONTACT, Mask.EMAIL),
    "phone": (Data.CONTACT, Mask.PHONE),
    "declared_monthly_income": (Data.FINANCIAL, None),
    "factors": (Data.FINANCIAL, None),
    "evidence": (Data.FINANCIAL, None),
}

# The filter conditions that read personal data, by their name in db.repositories' filters: a
# role that cannot read that data in full may not filter on it either (it would be an oracle).
FILTERS: Mapping[str, Data] = {
    "email": Data.CONTACT,  # applicants
    "applicant_email": Data.CONTACT,  # applications
    "score_min": Data.ASSESSMENT,  # applications, on the latest decision's assessment
    "score_max": Data.ASSESSMENT,
}

HIDDEN_CHARACTER = "•"  # what stands for each hidden digit of a phone number
HIDING = HIDDEN_CHARACTER * 3  # what stands for the hidden characters of an email
_DIGIT = re.compile("[0-9]")


def access(role: Role, data: Data) -> Access:
    """What ``role`` sees of ``data``."""
    return POLICY[data][role]


LABELS = {
    Data.CONTACT: "Contact details",
    Data.FINANCIAL: "Financial details",
    Data.ASSESSMENT: "The assessment",
    Data.SNAPSHOT: "Snapshots (personal values masked or left out as each field says)",
    Data.OTHERS_REQUESTS: "Other actors' request ids and idempotency keys",
}


def describe(data: Data) -> str:
    """The sentence a field's description ends with, naming who sees what of ``data``."""
    rows = POLICY[data]
    parts = [f"{role.value} {rows[role].value}" for role in Role]
    return f"{LABELS[data]}: " + ", ".join(parts) + "."


def mask_email(email: str) -> str:
    """``a•••@example.com``: the first character, then the domain from its ``@``."""
    at = email.find("@")
    return email[:1] + HIDING + (email[at:] if at >= 0 else "")


def mask_phone(phone: str) -> str:
    """Every digit but the last two characters hidden; spaces and signs kept."""
    return _DIGIT.sub(HIDDEN_CHARACTER, phone[:-2]) + phone[-2:]


MASKS = {Mask.EMAIL: mask_email, Mask.PHONE: mask_phone}


def shown(role: Role, data: Data, value: Any, mask: Mask | None = None) -> Any:
    """What ``role`` sees of ``value``, a datum of kind ``data`` (masked by ``mask``)."""
    seen = access(role, data)
    if value is None or seen is FULL:
        return value
    if seen is MASKED and mask is not None:
        return MASKS[mask](value)
    return None


def snapshot(role: Role, state: Any) -> Any:
    """An audit ``before``/``after`` state as ``role`` may read it: personal values masked or
    left out by their own rows of the policy; None when the role may not read snapshots."""
    seen = access(role, Data.SNAPSHOT)
    if seen is HIDDEN:
        return None
    if seen is FULL or not isinstance(state, dict):
        return state
    kept: dict[str, Any] = {}
    for name, value in state.items():
        kind = SNAPSHOT_FIELDS.get(name)
        if kind is None:
            kept[name] = value
            continue
        data, mask = kind
        if access(role, data) is FULL:
            kept[name] = value
        elif mask is not None and access(role, data) is MASKED and isinstance(value, str):
            kept[name] = MASKS[mask](value)
    return kept


def refused_filter(role: Role, conditions: Any) -> str | None:
    """The name of a condition set in ``conditions`` (a filter dataclass) on data ``role``
    cannot read in full, if any."""
    for name, data in FILTERS.items():
        if getattr(conditions, name, None) is not None and access(role, data) is not FULL:
            return name
    return None


def others_request(role: Role, actor: str, caller: str, value: str | None) -> str | None:
    """A request id or idempotency key of an audit event made by ``actor``, as ``caller``
    (of ``role``) may read it: their own always, other actors' per the policy."""
    if actor == caller or access(role, Data.OTHERS_REQUESTS) is FULL:
        return value
    return None
