"""What the service tells its operators: Prometheus metrics, one log line per request, and
OpenTelemetry traces (imported only when an OTLP endpoint is set).

A floor under the rest: imports only ``db`` (pools and the replica it reports on) and
Starlette's ASGI types; the schema, the compiled path, the agents' doors and the server record
into it.
"""
