"""The JSON side of a client WebSocket, shared by the browser and text-chat transports.

One object per connection: the greeting (`session.started`) and farewell (`session.ended`), the
receive loop with its size limit, and the replies every protocol gives alike: `ping` → `pong`,
`end` hangs up, a message that cannot be used gets an `error` reply and the session goes on. The
transport supplies what differs: the handler of its own message types, and of binary messages if
it takes any. When the loop ends, however it ends, the session is asked to end with the reason;
the loop is essential to its session, so a failure in it cancels the session.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from flowspec.conversation.variables import VariableRefused
from flowspec.frames import EndFrame
from flowspec.runtime.node import Context
from flowspec.transports.wire import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_SERVER_ERROR,
    CLOSE_TOO_BIG,
    ClientMessageError,
    Connection,
    dumps,
    parse_object,
)

MessageHandler = Callable[[str, dict[str, Any]], Awaitable[None]]
BinaryHandler = Callable[[bytes], Awaitable[None]]


def error_message(code: str, message: str) -> str:
    return dumps({"type": "error", "code": code, "message": message})


class ClientChannel:
    def __init__(self, ctx: Context, connection: Connection, *, max_message_bytes: int) -> None:
        self.ctx = ctx
        self.connection = connection
        self.max_message_bytes = max_message_bytes
        self.close_code = CLOSE_GOING_AWAY

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.socket.send_text(dumps(message))

    async def open(self, on_message: MessageHandler, on_binary: BinaryHandler | None = None,
                   **greeting: Any) -> None:
        """Begin the call with the variables of the connection's query string, greet the
        client and start receiving in a task the session owns. A call whose variables break
        the spec is told why, and ends before anything reaches the model."""
        try:
            self.ctx.call.begin(self.connection.query, transport=self.ctx.spec.type)
        except VariableRefused as exc:
            await self.send({"type": "error", "code": exc.code, "message": str(exc),
                             "fatal": True})
            return
        await self.send({
            "type": "session.started", "session_id": self.ctx.session_id,
            "spec": {"name": self.connection.spec_name, "version": self.connection.spec_version},
            **greeting,
        })
        self.ctx.spawn(self._receive(on_message, on_binary),
                       name=f"flowspec:{self.ctx.node_id}:receive", essential=True)

    async def close(self) -> None:
        if self.connection.socket.closed:
            return
        reason, message = ended(self.ctx.call.end_reason, self.ctx.call.end_detail)
        await self.send({"type": "session.ended", "reason": reason, "message": message})
        code = _CLOSE_CODES.get(reason, self.close_code)
        await self.connection.socket.close(code, "session ended")

    async def _receive(self, on_message: MessageHandler, on_binary: BinaryHandler | None) -> None:
        # Whatever ends the loop, the session is asked to end: a session whose client is no
        # longer read would never notice the client leave.
        reason = ""  # cancelled: the session is ending already, for its own reason
        try:
            reason = await self._read(on_message, on_binary)
        except Exception as exc:
            # Spawned as essential: the session also sees the failure itself, and cancels.
            reason = f"receiving from the client failed: {exc!r}"
            raise
        finally:
            await self.ctx.emit(EndFrame(reason=reason))

    async def _read(self, on_message: MessageHandler, on_binary: BinaryHandler | None) -> str:
        socket = self.connection.socket
        while (message := await socket.receive()) is not None:
            if len(message) > self.max_message_bytes:
                await socket.close(CLOSE_TOO_BIG, "message too big")
                return "client message too big"
            try:
                if isinstance(message, bytes):
                    if on_binary is None:
                        raise ClientMessageError("unsupported", "This transport takes JSON text "
                                                 "messages, not binary ones.")
                    await on_binary(message)
                    continue
                kind, body = parse_object(message)
                if kind == "end":
                    return "client ended the session"
                if kind == "ping":
                    await self.send({"type": "pong"})
                    continue
                await on_message(kind, body)
            except ClientMessageError as exc:
                await socket.send_text(error_message(exc.code, str(exc)))
        return "client disconnected"


_CLOSE_CODES = {
    "refused": CLOSE_POLICY,
    # A call the bot or the caller ended as meant is a normal closure, not the server going
    # away: a client (the page) tells it from a failure by the code.
    "end_call": CLOSE_NORMAL, "idle": CLOSE_NORMAL, "max_duration": CLOSE_NORMAL,
    "hangup": CLOSE_NORMAL,
    # The bot could not go on: not a hang-up, and not the server going away either.
    "model_unavailable": CLOSE_SERVER_ERROR, "model_refused": CLOSE_SERVER_ERROR,
}

_ENDED = {
    "client ended the session": ("hangup", "You ended the call."),
    "client disconnected": ("disconnected", "The connection closed."),
    "server shutting down": ("shutdown", "The server is shutting down."),
}


def ended(reason: str, detail: str) -> tuple[str, str]:
    """`(reason code, sentence)` of `session.ended`: the conversation's own codes (`end_call`,
    `idle`, `max_duration`, `refused`) with their sentence, the session's known reasons by
    name. Any other reason is internal (a node's failure, say): the server log has it, the
    client gets `ended`."""
    if reason in _ENDED:
        return _ENDED[reason]
    if reason in ("end_call", "idle", "max_duration", "refused"):
        return reason, detail
    if "model connection could not be restored" in reason:
        return "model_unavailable", "The bot lost its connection to the model."
    if "model could not be used" in reason:
        # The provider's own words stay in the server log: they may quote part of the key.
        return "model_refused", ("The model refused the bot's API key, its permissions or its "
                                 "quota; the server log says why.")
    return "ended", "The call ended."


def user_text(body: dict[str, Any]) -> str:
    """The text of a client's `text` message; ClientMessageError when it is not usable."""
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ClientMessageError("invalid_message", "`text` must be a non-empty string.")
    return text
