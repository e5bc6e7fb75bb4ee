"""Permissions, declared on fields: which roles may call a root query, mutation or subscription."""

from __future__ import annotations

from typing import Any

from strawberry.exceptions import StrawberryGraphQLError
from strawberry.permission import BasePermission

from graph.context import Info
from lending.access import Permission


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
                    "Send a valid API key: Authorization: Bearer <key>.",
                    extensions={"code": "UNAUTHENTICATED"},
                )
            return principal.may(permission)

    Requires.__name__ = Requires.__qualname__ = f"Requires{permission.value.title()}"
    return Requires


READ = requires(Permission.READ)
APPLY = requires(Permission.APPLY)
WITHDRAW = requires(Permission.WITHDRAW)
DECIDE = requires(Permission.DECIDE)
DISBURSE = requires(Permission.DISBURSE)
RECORD_PAYMENT = requires(Permission.RECORD_PAYMENT)
REVERSE_PAYMENT = requires(Permission.REVERSE_PAYMENT)
MANAGE_PRODUCTS = requires(Permission.MANAGE_PRODUCTS)
