"""The client-socket seam: what a transport node needs from one client connection.

A transport node is given a `ClientSocket` (the server wraps each aiohttp WebSocket in an
`AiohttpClientSocket`); tests hand it one end of a `MemorySocketPair` instead, so no transport test
needs a server or patches anything. Also the helpers every JSON protocol here shares: parsing a
client message into an object, and the close codes used for bad client input.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from flowspec import limits

if TYPE_CHECKING:
    from aiohttp import web

Message = str | bytes

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SERVER_ERROR = 1011


class ClientSocket(Protocol):
    """One client connection, as a transport node sees it."""

    @property
    def closed(self) -> bool: ...

    async def receive(self) -> Message | None:
        """The next text or binary message; None once the connection is closed."""
        ...

    async def send_text(self, text: str) -> None:
        """Send a text message. Does nothing once the connection is closed."""
        ...

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message. Does nothing once the connection is closed."""
        ...

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None: ...


@dataclass(slots=True, kw_only=True)
class Connection:
    """What the server hands a transport node for one client: the socket and what the client may
    be told about the bot. `on_frame(direction, kind)` counts frames for metrics."""

    socket: ClientSocket
    spec_name: str = ""
    spec_version: int = 1
    remote: str = ""
    on_frame: Callable[[str, str], None] | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    """The connection request's query string: the call's variables (`?customer_name=Ann`)."""

    def count(self, direction: str, kind: str) -> None:
        if self.on_frame is not None:
            self.on_frame(direction, kind)


class ClientMessageError(ValueError):
    """A client message that cannot be used; `code` is the `error` event's code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_object(text: str, *, key: str = "type") -> tuple[str, dict[str, Any]]:
    """`(kind, message)` from a client's JSON text message whose `key` names its kind.

    Raises ClientMessageError for non-JSON, JSON beyond the client bounds (`limits.CLIENT_*`:
    nesting, number length, NaN and infinities), a non-object or a missing kind."""
    try:
        message = limits.loads(text, max_depth=limits.CLIENT_MAX_DEPTH,
                               max_digits=limits.CLIENT_MAX_NUMBER_DIGITS)
    except limits.InputTooComplex as exc:
        raise ClientMessageError("message_too_complex", f"The message is beyond what a client "
                                 f"may send: {exc}.") from None
    except ValueError as exc:
        raise ClientMessageError("invalid_json", f"The message is not JSON: {exc}.") from None
    if not isinstance(message, dict):
        raise ClientMessageError("invalid_message", "The message must be a JSON object.")
    kind = message.get(key)
    if not isinstance(kind, str):
        raise ClientMessageError("invalid_message", f"The message has no string {key!r} field.")
    return kind, message


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""One encoder for every message: `json.dumps` with `separators` builds a new one per call."""


def dumps(message: dict[str, Any]) -> str:
    return _ENCODER.encode(message)


class AiohttpClientSocket:
    """`ClientSocket` over an aiohttp server-side WebSocket that is already prepared."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    @property
    def closed(self) -> bool:
        return self._ws.closed

    async def receive(self) -> Message | None:
        from aiohttp import WSMsgType

        while not self._ws.closed:
            msg = await self._ws.receive()
            if msg.type is WSMsgType.TEXT:
                return str(msg.data)
            if msg.type is WSMsgType.BINARY:
                return bytes(msg.data)
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                            WSMsgType.ERROR):
                # On ERROR (an oversize message, a protocol violation) aiohttp has already
                # closed the socket with the matching code (1009, 1002).
                return None
        return None

    async def send_text(self, text: str) -> None:
        if self._ws.closed:
            return
        try:
            await self._ws.send_str(text)
        except (ConnectionError, RuntimeError):
            return  # the peer went away; the receive loop sees the close and ends the session

    async def send_bytes(self, data: bytes) -> None:
        if self._ws.closed:
            return
        try:
            await self._ws.send_bytes(data)
        except (ConnectionError, RuntimeError):
            return

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        await self._ws.close(code=code, message=reason.encode()[:120])


_CLOSED = object()


class MemorySocket:
    """One end of a `MemorySocketPair`: a `ClientSocket` with no network."""

    def __init__(self, inbox: asyncio.Queue[object], outbox: asyncio.Queue[object]) -> None:
        self._inbox = inbox
        self._outbox = outbox
        self._closed = False
        self.peer: MemorySocket | None = None
        self.close_code: int | None = None
        """The code the connection was closed with, by either end."""
        self.close_reason = ""

    @property
    def closed(self) -> bool:
        return self._closed

    async def receive(self) -> Message | None:
        if self._closed and self._inbox.empty():
            return None
        item = await self._inbox.get()
        if item is _CLOSED:
            self._closed = True
            return None
        assert isinstance(item, str | bytes)
        return item

    async def send_text(self, text: str) -> None:
        if not self._closed:
            self._outbox.put_nowait(text)

    async def send_bytes(self, data: bytes) -> None:
        if not self._closed:
            self._outbox.put_nowait(bytes(data))

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        for end in (self, self.peer):
            if end is not None:
                end.close_code, end.close_reason = code, reason
        self._outbox.put_nowait(_CLOSED)
        self._inbox.put_nowait(_CLOSED)

    async def receive_json(self) -> dict[str, Any]:
        """The next text message, parsed (binary messages are skipped). For tests."""
        while True:
            item = await self.receive()
            if item is None:
                raise ConnectionError("The socket closed.")
            if isinstance(item, str):
                value: dict[str, Any] = json.loads(item)
                return value

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.send_text(dumps(message))


class MemorySocketPair:
    """Two connected `MemorySocket`s: `server` for the transport node, `client` for the test."""

    def __init__(self) -> None:
        to_server: asyncio.Queue[object] = asyncio.Queue()
        to_client: asyncio.Queue[object] = asyncio.Queue()
        self.server = MemorySocket(to_server, to_client)
        self.client = MemorySocket(to_client, to_server)
        self.server.peer, self.client.peer = self.client, self.server
