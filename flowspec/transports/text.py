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
    {"type": "transcript", ...}, {"type": "error", "code", "message"}
    {"type": "session.ended", "reason", "message"}   why the call ended (see the browser's)

A binary message, non-JSON text or an unknown type gets an `error` message; an oversize message
closes the connection (1009).
"""

from __future__ import annotations

from typing import Any

from flowspec.frames import Frame, TextFrame
from flowspec.runtime.node import Context
from flowspec.transports.channel import ClientChannel, user_text
from flowspec.transports.websocket import frame_message
from flowspec.transports.wire import ClientMessageError, Connection


class TextTransport:
    boundary = True

    def __init__(self, ctx: Context, connection: Connection | None = None) -> None:
        self.ctx = ctx
        self.connection = connection
        limit = int(getattr(ctx.spec, "max_message_bytes", 65_536))
        self.channel = None if connection is None else ClientChannel(
            ctx, connection, max_message_bytes=limit)

    @property
    def reports_caller(self) -> bool:
        """With a client, the call begins with the variables of its connection's query."""
        return self.channel is not None

    async def start(self) -> None:
        if self.channel is not None:
            await self.channel.open(self._on_message)

    async def stop(self) -> None:
        if self.channel is not None:
            await self.channel.close()

    async def handle(self, frame: Frame, port: str) -> None:
        if self.channel is None:
            return
        message = frame_message(frame)
        if message is not None:
            self.channel.connection.count("out", type(frame).__name__)
            await self.channel.send(message)

    async def _on_message(self, kind: str, body: dict[str, Any]) -> None:
        if kind != "text":
            raise ClientMessageError("unknown_type", f"Unknown message type {kind!r}.")
        text = user_text(body)
        assert self.channel is not None
        self.channel.connection.count("in", "TextFrame")
        await self.ctx.emit(TextFrame(text=text, role="user"))
