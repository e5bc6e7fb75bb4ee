"""Persistence: engine and sessions, the embedded PostgreSQL, models, repositories (every SQL
statement lives here) and ``reads/`` (compiled reads in SQL).

May import the pure rules of ``lending`` (enums, terms) and nothing else of ours.
"""
