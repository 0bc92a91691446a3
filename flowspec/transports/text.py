"""`transport.text`: a JSON chat over WebSocket, for text bots.

The browser protocol (`flowspec.transports.websocket`) without audio. Text messages only:

client → server
    {"type": "text", "text": "..."}       a user message
    {"type": "end"}                       hang up
    {"type": "ping"}                      answered with {"type": "pong"}

server → client
    {"type": "session.started", "session_id", "spec": {"name", "version"}}
    {"type": "response.started"}, then {"type": "text", "role": "assistant", "text", "item_id"}
    (one per delta), then {"type": "response.ended", "status"}
    {"type": "transcript", ...}, {"type": "error", "code", "message"}, {"type": "session.ended"}

A binary message, non-JSON text or an unknown type gets an `error` message; an oversize message
closes the connection (1009).
"""

from __future__ import annotations

from typing import Any

from flowspec.frames import EndFrame, Frame, TextFrame
from flowspec.runtime.node import Context
from flowspec.transports.websocket import error_message, frame_message
from flowspec.transports.wire import (
    CLOSE_GOING_AWAY,
    CLOSE_TOO_BIG,
    ClientMessageError,
    Connection,
    dumps,
    parse_object,
)


class TextTransport:
    boundary = True

    def __init__(self, ctx: Context, connection: Connection | None = None) -> None:
        self.ctx = ctx
        self.connection = connection
        self.max_message_bytes = int(getattr(ctx.spec, "max_message_bytes", 65_536))
        self.close_code = CLOSE_GOING_AWAY

    async def start(self) -> None:
        if self.connection is None:
            return
        await self._send({"type": "session.started", "session_id": self.ctx.session_id,
                          "spec": {"name": self.connection.spec_name,
                                   "version": self.connection.spec_version}})
        self.ctx.spawn(self._receive(), name=f"flowspec:{self.ctx.node_id}:receive")

    async def stop(self) -> None:
        if self.connection is None or self.connection.socket.closed:
            return
        await self._send({"type": "session.ended"})
        await self.connection.socket.close(self.close_code, "session ended")

    async def handle(self, frame: Frame, port: str) -> None:
        if self.connection is None:
            return
        message = frame_message(frame)
        if message is not None:
            self.connection.count("out", type(frame).__name__)
            await self._send(message)

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.connection is not None
        await self.connection.socket.send_text(dumps(message))

    async def _receive(self) -> None:
        assert self.connection is not None
        socket = self.connection.socket
        reason = "client disconnected"
        while (message := await socket.receive()) is not None:
            if len(message) > self.max_message_bytes:
                await socket.close(CLOSE_TOO_BIG, "message too big")
                reason = "client message too big"
                break
            try:
                if isinstance(message, bytes):
                    raise ClientMessageError("unsupported", "This transport takes JSON text "
                                             "messages, not binary ones.")
                kind, body = parse_object(message)
                if kind == "end":
                    reason = "client ended the session"
                    break
                await self._on_message(kind, body)
            except ClientMessageError as exc:
                await socket.send_text(error_message(exc.code, str(exc)))
        await self.ctx.emit(EndFrame(reason=reason))

    async def _on_message(self, kind: str, body: dict[str, Any]) -> None:
        assert self.connection is not None
        if kind == "ping":
            await self._send({"type": "pong"})
            return
        if kind != "text":
            raise ClientMessageError("unknown_type", f"Unknown message type {kind!r}.")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ClientMessageError("invalid_message", "`text` must be a non-empty string.")
        self.connection.count("in", "TextFrame")
        await self.ctx.emit(TextFrame(text=text, role="user"))
