"""Human-friendly references for applications and loans."""

from __future__ import annotations

import secrets

# Crockford's base32 alphabet: no I, L, O or U, so references read aloud without confusion.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference(prefix: str, length: int = 10) -> str:
    """A random reference such as ``APP-7K3M9Q2XBD`` (unique with overwhelming probability)."""
    return prefix + "-" + "".join(secrets.choice(_ALPHABET) for _ in range(length))
