from tests.dbfixtures import admin_key, api_keys, app, clean_tables, client, sql

__all__ = ["admin_key", "api_keys", "app", "clean_tables", "client", "sql"]
