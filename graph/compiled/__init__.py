"""The compiled read path: a query root field (or an event's object) answered by one SQL
statement that builds its JSON in PostgreSQL, byte for byte what field-by-field resolution
answers.

- ``reads``: what each field reads, declared beside the field in the schema's modules;
- ``planner``: a selection and the caller's role → a read plan (``db.reads.plan``);
- ``executor``: the plan cache and graphql-core's executor with its compiled hook;
- ``short_path``: a wholly compiled query answered before the executor runs (ASGI).

May import the schema's modules (permissions, inputs, limits), ``observability``, ``db`` (its
``reads`` turn plans into SQL) and the pure rules; the short path, an ASGI middleware, also the
server's HTTP answers and principals. The request context holds this path through protocols of
its own (graph.context), so the schema's modules import nothing here but ``reads``.
"""
