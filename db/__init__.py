"""Persistence: engine and sessions, the embedded PostgreSQL, models and repositories."""
