from tests.dbfixtures import app, clean_tables, client, sql

__all__ = ["app", "clean_tables", "client", "sql"]
