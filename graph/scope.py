"""Who sees which rows: a borrower sees only their own, and what roles may filter on.

A borrower (lending.access.Role.BORROWER) is the applicant whose email their token names.
Their root lists are scoped to that applicant's rows, and an object of someone else, asked
for by id, reads as none at all (null, or NOT_FOUND from a mutation): nothing tells it from
one that does not exist. Relations lead from an object only to its own applicant's rows (or
to products, which are everyone's), so scoping the roots scopes everything. The compiled read
path scopes the same roots in SQL (db.reads.sql, rp.OWNER_SLOT).
"""

from __future__ import annotations

from typing import Any, TypeVar

from db.reads.plan import Domain, PageArgs
from db.repositories import applicants as applicant_repo
from graph.context import Info
from graph.errors import ClientError
from lending.privacy import refused_filter

T = TypeVar("T")

OWNED_DOMAINS = frozenset({Domain.APPLICANTS, Domain.APPLICATIONS, Domain.LOANS})


def checked_filter(info: Info, args: PageArgs) -> None:
    """FORBIDDEN when the filter has a condition on data the caller's role cannot read in full
    (lending.privacy.FILTERS): it would tell what a masked value is."""
    name = refused_filter(info.context.role, args.filter)
    if name is not None:
        raise ClientError(
            f"Your role may not filter on {name}: it cannot read that in full.", "FORBIDDEN"
        )


def scoped(info: Info, domain: Domain, args: PageArgs) -> PageArgs:
    """A root list's arguments, scoped to a borrower's own rows."""
    owner = info.context.principal.owner if info.context.principal else None
    if owner is None:
        return args
    if domain not in OWNED_DOMAINS:  # guarded by a permission borrowers lack
        raise ClientError("Your role may not read this list.", "FORBIDDEN")
    return args.owned_by(owner)


async def owner_key(info: Info) -> int | None:
    """The key of the borrower's applicant (None: they have not applied yet), once a request."""
    context = info.context
    owner = context.principal.owner if context.principal else None
    if owner is None:
        return None
    if owner not in context.owners:
        context.owners[owner] = await context.db.run(applicant_repo.owner_key, owner)
    return context.owners[owner]


async def visible(info: Info, obj: T | None) -> T | None:
    """``obj`` when the caller may see it (a borrower: their own, or a product); else None."""
    principal = info.context.principal
    if obj is None or principal is None or principal.owner is None:
        return obj
    if getattr(type(obj), "TABLE", None) == "loan_products":
        return obj
    key = await owner_key(info)
    return obj if key is not None and await _applicant_of(info, obj) == key else None


async def _applicant_of(info: Info, obj: Any) -> int | None:
    """The applicant an object belongs to (None: no applicant's)."""
    table = getattr(type(obj), "TABLE", None)
    loaders = info.context.loaders
    if table == "applicants":
        key: int = obj.key
        return key
    if table in ("loan_applications", "loans"):
        return int(obj.applicant_key)
    if table == "decisions":
        row = await loaders.one("loan_applications").load(obj.application_key)
    elif table in ("installments", "payments", "reminders"):
        row = await loaders.one("loans").load(obj.loan_key)
    else:
        return None
    return None if row is None else int(row.applicant_id)
