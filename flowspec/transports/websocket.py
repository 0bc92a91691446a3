"""`transport.websocket`: the browser protocol (and any raw-PCM WebSocket client).

Binary messages carry audio in the spec's format (PCM16 little-endian at `audio.sample_rate` by
default), both ways. Text messages are JSON objects with a `type`:

client → server
    {"type": "text", "text": "..."}                          typed user input
    {"type": "playback", "item_id": "...", "played_ms": 1234, "playing": true}
                                                              what the client has played
    {"type": "commit"}                                       end the user's turn (manual turns)
    {"type": "interrupt"}                                    stop the bot's answer now
    {"type": "image", "mime_type": "image/jpeg", "data": "<base64>"}
                                                              a camera frame (`video.enabled`)
    {"type": "end"}                                          hang up
    {"type": "ping"}                                         answered with {"type": "pong"}

server → client
    {"type": "session.started", "session_id", "spec": {"name", "version"}, "audio": {...}}
    {"type": "audio.started", "item_id"}     the binary messages that follow belong to this item
    {"type": "audio.clear", "item_id"}       barge-in: drop unplayed audio now
    {"type": "transcript", "role", "text", "final", "item_id"}
    {"type": "text", "role", "text", "item_id"}
    {"type": "speech.started"} / {"type": "speech.ended"}  the user's voice activity
    {"type": "response.started"} / {"type": "response.ended", "status"}
    {"type": "error", "code", "message"}     a bad client message, a node failure, or why a
                                             call is refused (`variables.*`, then it ends)
    {"type": "session.ended", "reason", "message"}
                                             why the call ended: a code (`end_call`, `idle`,
                                             `max_duration`, `hangup`, `refused`, ...) and a
                                             sentence to show

The connection's query string holds the call's variables (`/ws?customer_name=Ann`): only the
spec's declared names, or the call is refused (close 1008). A call the bot or the caller ended
closes with 1000, a server going away with 1001.

Bad input never ends the session: non-JSON, unknown types and malformed fields get an `error`
message; only an oversize message closes the connection (1009).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from flowspec.frames import (
    AudioFrame,
    BotSpeechEndedFrame,
    BotSpeechStartedFrame,
    CommitInputFrame,
    ErrorFrame,
    Frame,
    ImageFrame,
    InterruptFrame,
    ResponseEndedFrame,
    ResponseStartedFrame,
    TextFrame,
    TranscriptFrame,
    UserSpeechEndedFrame,
    UserSpeechStartedFrame,
)
from flowspec.runtime.node import Context
from flowspec.spec.models.transports import TransportAudioSpec, VideoSpec
from flowspec.transports.channel import ClientChannel, user_text
from flowspec.transports.playback import Playback, report_interruption
from flowspec.transports.wire import ClientMessageError, Connection

IMAGE_TYPES = frozenset({"image/jpeg", "image/png"})
_WIDTH = {"pcm16": 2, "pcmu": 1, "pcma": 1}


def frame_message(frame: Frame) -> dict[str, Any] | None:
    """The JSON message a frame becomes on the browser and text-chat protocols (None: not sent)."""
    match frame:
        case TranscriptFrame():
            return {"type": "transcript", "role": frame.role, "text": frame.text,
                    "final": frame.final, "item_id": frame.item_id}
        case TextFrame():
            return {"type": "text", "role": frame.role, "text": frame.text,
                    "item_id": frame.item_id}
        case UserSpeechStartedFrame():
            return {"type": "speech.started", "item_id": frame.item_id}
        case UserSpeechEndedFrame():
            return {"type": "speech.ended", "item_id": frame.item_id}
        case ResponseStartedFrame():
            return {"type": "response.started", "response_id": frame.response_id}
        case ResponseEndedFrame():
            return {"type": "response.ended", "response_id": frame.response_id,
                    "status": frame.status}
        case ErrorFrame():
            return {"type": "error", "code": frame.code or "node_error",
                    "message": f"{frame.node_id}: {frame.message}", "fatal": frame.fatal}
    return None


class WebsocketTransport:
    """One browser (or raw-PCM) client. Without a `connection` it is a sink that drops output,
    which is what a session of the graph run outside `flowspec serve` gets."""

    boundary = True
    reports_playback = True
    """The client says what it has played (`BotSpeechEndedFrame` once it all has)."""

    def __init__(self, ctx: Context, connection: Connection | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.connection = connection
        audio = getattr(ctx.spec, "audio", None)
        self.audio = audio if isinstance(audio, TransportAudioSpec) else TransportAudioSpec()
        self.max_message_bytes = int(getattr(ctx.spec, "max_message_bytes", 1_048_576))
        video = getattr(ctx.spec, "video", None)
        self.video = video if isinstance(video, VideoSpec) else VideoSpec()
        self.playback = Playback(clock)
        self._frame_bytes = _WIDTH[self.audio.encoding] * self.audio.channels
        self._carry = b""  # a partial sample left over from the last binary message
        self._media_ms = 0.0
        self.channel = None if connection is None else ClientChannel(
            ctx, connection, max_message_bytes=self.max_message_bytes)

    @property
    def reports_caller(self) -> bool:
        """With a client, the call begins with the variables of its connection's query."""
        return self.channel is not None

    async def start(self) -> None:
        if self.channel is not None:
            await self.channel.open(self._on_message, self._on_audio,
                                    audio=self.audio.model_dump())

    async def stop(self) -> None:
        if self.channel is not None:
            await self.channel.close()

    # -- output: frames from the graph to the client -------------------------------------------

    async def handle(self, frame: Frame, port: str) -> None:
        if self.connection is None:
            return
        if isinstance(frame, AudioFrame):
            await self._play(frame)
        elif isinstance(frame, InterruptFrame):
            await self._interrupt()
        else:
            message = frame_message(frame)
            if message is not None:
                self.connection.count("out", type(frame).__name__)
                await self._send(message)

    async def _play(self, frame: AudioFrame) -> None:
        assert self.connection is not None
        if self.playback.sent(frame.item_id, frame.duration_ms):
            await self._send({"type": "audio.started", "item_id": frame.item_id})
            await self.ctx.emit(BotSpeechStartedFrame(item_id=frame.item_id))
        self.connection.count("out", "AudioFrame")
        await self.connection.socket.send_bytes(frame.audio)

    async def _interrupt(self) -> None:
        async def clear(item_id: str | None) -> None:
            await self._send({"type": "audio.clear", "item_id": item_id})

        await report_interruption(self.ctx, self.playback, clear)

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.channel is not None
        await self.channel.send(message)

    # -- input: messages from the client to the graph -------------------------------------------

    async def _on_audio(self, data: bytes) -> None:
        assert self.connection is not None
        data = self._carry + data
        usable = len(data) - len(data) % self._frame_bytes
        data, self._carry = data[:usable], data[usable:]
        if not data:
            return
        frame = AudioFrame(audio=data, encoding=self.audio.encoding,
                           sample_rate=self.audio.sample_rate, channels=self.audio.channels,
                           timestamp_ms=self._media_ms)
        self._media_ms += frame.duration_ms
        self.connection.count("in", "AudioFrame")
        await self.ctx.emit(frame)

    async def _on_message(self, kind: str, body: dict[str, Any]) -> None:
        assert self.connection is not None
        match kind:
            case "text":
                text = user_text(body)
                self.connection.count("in", "TextFrame")
                await self.ctx.emit(TextFrame(text=text, role="user"))
            case "playback":
                await self._on_playback(body)
            case "commit":
                await self.ctx.emit(CommitInputFrame())
            case "image":
                await self._on_image(body)
            case "interrupt":
                # The caller cut the bot off (the page's push-to-talk): the model stops and
                # its answer is cut to what was heard, as on a barge-in its server detected.
                await self.ctx.emit(InterruptFrame())
            case _:
                raise ClientMessageError("unknown_type", f"Unknown message type {kind!r}.")

    async def _on_image(self, body: dict[str, Any]) -> None:
        assert self.connection is not None
        if not self.video.enabled:
            raise ClientMessageError("video_off", "This bot takes no camera frames (its "
                                     "transport's video is not enabled).")
        mime, data = body.get("mime_type", "image/jpeg"), body.get("data")
        if mime not in IMAGE_TYPES or not isinstance(data, str):
            raise ClientMessageError("invalid_message", "`image` needs base64 `data` and a "
                                     f"`mime_type` of {' or '.join(sorted(IMAGE_TYPES))}.")
        try:
            image = base64.b64decode(data, validate=True)
        except ValueError:
            raise ClientMessageError("invalid_message", "`data` is not base64.") from None
        self.connection.count("in", "ImageFrame")
        await self.ctx.emit(ImageFrame(image=image, mime_type=mime))

    async def _on_playback(self, body: dict[str, Any]) -> None:
        played, item_id = body.get("played_ms"), body.get("item_id")
        if (not isinstance(played, int | float) or isinstance(played, bool)
                or not (item_id is None or isinstance(item_id, str))):
            raise ClientMessageError("invalid_message", "`playback` needs a numeric `played_ms` "
                                     "and a string `item_id`.")
        self.playback.confirmed(item_id, float(played), playing=body.get("playing") is not False)
        finished = self.playback.finished()
        if finished is not None:
            await self.ctx.emit(BotSpeechEndedFrame(item_id=finished or None))
