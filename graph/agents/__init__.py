"""The agents' doors: the operation catalogue (``operations/``, one named operation a file),
its tools served over MCP, and operations sent by their sha256 (persisted operations, and the
catalogue-only rule).

May import the schema's modules (permissions), ``observability`` and the server's HTTP
vocabulary (graph.server.http): a tool call is an ordinary request through the app.
"""
