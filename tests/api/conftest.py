from tests.dbfixtures import (
    admin_key,
    api_keys,
    app,
    clean_tables,
    client,
    per_field_app,
    per_field_client,
    sql,
)

__all__ = [
    "admin_key",
    "api_keys",
    "app",
    "clean_tables",
    "client",
    "per_field_app",
    "per_field_client",
    "sql",
]
