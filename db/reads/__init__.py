"""Compiled reads in SQL: the read plan's vocabulary (plan.py), a plan rendered into one
statement building JSON (sql.py), and the pool that runs those statements prepared (pool.py).

May import ``db`` (sessions, repositories' table definitions) and the pure rules; knows nothing
of GraphQL: graph.compiled makes the plans.
"""
