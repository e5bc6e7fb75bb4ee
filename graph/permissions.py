"""Permissions, declared on fields: which roles may call a root query, mutation or subscription.

Each guarded root field is made by its permission (``READ.field(...)``, ``DECIDE.mutation(...)``)
so that the check and the roles named in the field's description come from one declaration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import strawberry
from graphql import GraphQLField
from strawberry.exceptions import StrawberryGraphQLError
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types.field import StrawberryField

from lending.access import Permission, Role, role_may

if TYPE_CHECKING:  # the context imports the read planner, which imports this module
    from graph.context import Info


def requires(permission: Permission) -> type[BasePermission]:
    """A permission class granting the field to roles that have ``permission``."""
    permission_needed = permission

    class Requires(BasePermission):
        permission = permission_needed
        message = f"Your role may not do this (needs {permission.value})."
        error_extensions = {"code": "FORBIDDEN"}  # noqa: RUF012 - strawberry reads it per class

        async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
            principal = await info.context.authenticated()
            if principal is None:
                raise StrawberryGraphQLError(
                    await info.context.refused(), extensions={"code": "UNAUTHENTICATED"}
                )
            return principal.may(permission)

    Requires.__name__ = Requires.__qualname__ = f"Requires{permission.value.title()}"
    return Requires


def required_permissions(field: GraphQLField) -> frozenset[Permission] | None:
    """The permissions a schema field requires; None when it is guarded in some other way.

    A field built by Strawberry without a guard requires nothing (its parent was guarded).
    """
    definition = (field.extensions or {}).get("strawberry-definition")
    if not isinstance(definition, StrawberryField):
        return frozenset()
    needed: set[Permission] = set()
    for extension in definition.extensions:
        if not isinstance(extension, PermissionExtension):
            continue
        for check in extension.permissions:
            permission = getattr(check, "permission", None)
            if not isinstance(permission, Permission):
                return None
            needed.add(permission)
    return frozenset(needed)


class Guard:
    """Root fields guarded by one permission, their description naming the roles it grants."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission
        self.check = requires(permission)
        self.roles = tuple(role.value for role in Role if role_may(role, permission))

    def describe(self, description: str) -> str:
        """``description`` followed by the roles that may use the field."""
        return f"{description} Roles: {', '.join(self.roles)}."

    def field(self, description: str, **kwargs: Any) -> Any:
        """A query field (as ``strawberry.field``) open to the roles with this permission."""
        return strawberry.field(
            description=self.describe(description), permission_classes=[self.check], **kwargs
        )

    def mutation(self, description: str, **kwargs: Any) -> Any:
        """A mutation (as ``strawberry.mutation``) open to the roles with this permission."""
        return strawberry.mutation(
            description=self.describe(description), permission_classes=[self.check], **kwargs
        )

    def subscription(self, description: str, **kwargs: Any) -> Any:
        """A subscription (as ``strawberry.subscription``) open to those roles."""
        return strawberry.subscription(
            description=self.describe(description), permission_classes=[self.check], **kwargs
        )


READ = Guard(Permission.READ)
OVERSEE = Guard(Permission.OVERSEE)
APPLY = Guard(Permission.APPLY)
WITHDRAW = Guard(Permission.WITHDRAW)
DECIDE = Guard(Permission.DECIDE)
DISBURSE = Guard(Permission.DISBURSE)
RECORD_PAYMENT = Guard(Permission.RECORD_PAYMENT)
REVERSE_PAYMENT = Guard(Permission.REVERSE_PAYMENT)
SETTLE_LOAN = Guard(Permission.SETTLE_LOAN)
CANCEL_LOAN = Guard(Permission.CANCEL_LOAN)
WRITE_OFF_LOAN = Guard(Permission.WRITE_OFF_LOAN)
REQUEST_REMINDER = Guard(Permission.REQUEST_REMINDER)
REPORT_REMINDER = Guard(Permission.REPORT_REMINDER)
