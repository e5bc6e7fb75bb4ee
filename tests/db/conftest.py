from tests.dbfixtures import clean_tables

__all__ = ["clean_tables"]
