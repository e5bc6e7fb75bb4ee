"""The web server: the FastAPI app (app.py) and its middlewares, in the order a request meets
them: CORS, gzip, request ids, GraphQL over HTTP, body limits (http.py, request_body.py,
over_http.py), principals (the API key cache); GraphiQL (ide.py), the settings, and
``lending schema-check`` (schema_changes.py).

The top of the house: may import everything in ``graph``, the ``lending`` services and ``db``.
Nothing in ``graph`` imports it but the CLI, the agents' doors and the compiled short path,
which answer in its HTTP vocabulary (http.py).
"""
