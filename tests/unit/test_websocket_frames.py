"""An operation's answer to a WebSocket that is already closed is dropped quietly: the client
has gone, and nobody is to be told (a traceback in the log was taken for a fault)."""

from __future__ import annotations

from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from graph.server.app import TextFrames


async def test_an_answer_after_the_close_is_dropped():
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    socket = WebSocket({"type": "websocket", "path": "/graphql", "headers": []}, receive, send)
    # the server has sent its close frame (4400, 1012 …)
    socket.application_state = WebSocketState.DISCONNECTED
    frames = TextFrames(None, socket, socket)  # type: ignore[arg-type]
    await frames.send_json({"type": "next", "id": "1", "payload": {"data": {}}})
    assert sent == []
