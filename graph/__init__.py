"""The GraphQL face of the service. This package's own modules are the schema and what every
resolver uses: the schema's assembly (schema.py), root fields per domain, ``types/``, the
mutation helper, permissions, errors, relay, relations, loaders, enums, scalars, ids, inputs,
events, the query limits, and the ``lending`` command (cli.py).

Its rooms: ``compiled/`` (reads answered by one SQL statement), ``server/`` (the web app and
its middlewares), ``observability/`` (metrics, logs, traces), ``agents/`` (the operation
catalogue, MCP, persisted operations). ``graph`` may use ``lending`` and ``db``; nothing outside
it but the tests and the benchmarks uses it (tests/unit/test_imports.py holds the rules).
"""
